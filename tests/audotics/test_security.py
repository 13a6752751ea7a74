"""Secure by default: the embedded servers take the generated credentials and nothing else, the
application users hold no more than the platform needs, the local state is private, and no
secret is printed or logged. Real PostgreSQL and Redis (the session's), no mocks."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest
import redis

from audotics import services
from audotics.settings import (
    CREDENTIALS_FILE,
    LOCAL_POSTGRES_ADMIN_USER,
    LOCAL_POSTGRES_APP_USER,
    LOCAL_REDIS_APP_USER,
    LocalCredentials,
    Settings,
    ensure_local_credentials,
    mask_secrets,
)
from tests.support import REPO, isolated_settings


def _creds(settings: Settings) -> LocalCredentials:
    creds = settings.local_credentials
    assert creds is not None, "services up must have generated the credentials"
    return creds


def _secrets(settings: Settings) -> list[str]:
    return list(dataclasses.asdict(_creds(settings)).values())


def _pg(settings: Settings, **params: object) -> psycopg.Connection:
    # passfile=/dev/null: a ~/.pgpass or PGPASSWORD on this machine must not log us in.
    values = dict(host="127.0.0.1", port=settings.postgres_port, dbname="audotics",
                  user=LOCAL_POSTGRES_APP_USER, passfile=os.devnull, connect_timeout=5)  # fmt: skip
    values.update(params)
    return psycopg.connect(**values)  # type: ignore[arg-type]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- PostgreSQL ------------------------------------------------------------------------------


def test_postgres_refuses_a_missing_or_wrong_password(running_services: Settings) -> None:
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _pg(running_services, password="")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _pg(running_services, password="not-the-password")
    with _pg(running_services, password=_creds(running_services).postgres_password) as conn:
        assert conn.execute("select current_user").fetchone() == (LOCAL_POSTGRES_APP_USER,)


def test_postgres_superuser_cannot_log_in_over_tcp(running_services: Settings) -> None:
    admin_password = _creds(running_services).postgres_admin_password
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        _pg(running_services, user=LOCAL_POSTGRES_ADMIN_USER, password=admin_password)
    with services.postgres_admin_connection(running_services) as conn:  # the private socket
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()
    hba = Path(running_services.state_dir / "postgres" / "data" / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert all(rule[-1] == "scram-sha-256" for rule in rules), hba


def test_app_role_owns_its_database_and_nothing_more(running_services: Settings) -> None:
    url = running_services.postgres_url.replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        role = conn.execute(
            "select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "from pg_roles where rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, False, False)
        owner = conn.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
        ).fetchone()
        assert owner == (LOCAL_POSTGRES_APP_USER,)
        # What dbt and the loaders do: create a schema, a table, COPY FROM STDIN into it.
        conn.execute("create schema if not exists security_probe")
        conn.execute("create table if not exists security_probe.t (x int)")
        with conn.cursor().copy("copy security_probe.t (x) from stdin") as copy:
            copy.write_row((1,))
        conn.execute("drop schema security_probe cascade")
        # What only a superuser could: run programs or read files on the server, make roles.
        for statement in (
            "copy (select 1) to program 'id'",
            "select pg_read_file('/etc/passwd')",
            "create role intruder superuser",
            "create database intruder",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


# --- Redis -----------------------------------------------------------------------------------


def test_redis_refuses_clients_without_the_password(running_services: Settings) -> None:
    anonymous = redis.Redis(port=running_services.redis_port, protocol=2)
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):  # NOAUTH
        anonymous.ping()
    # The `default` user is off: a password alone (AUTH <password>) is refused too.
    as_default = redis.Redis(
        port=running_services.redis_port, password=_secrets(running_services)[2]
    )
    with pytest.raises(redis.AuthenticationError):
        as_default.ping()
    wrong = redis.Redis(
        port=running_services.redis_port, username=LOCAL_REDIS_APP_USER, password="wrong"
    )
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()


def test_redis_app_user_cannot_reconfigure_the_server(running_services: Settings) -> None:
    app = redis.Redis.from_url(running_services.redis_dsn)
    assert app.set("security:probe", "1")  # an ordinary command works
    for command in (
        ("CONFIG", "SET", "dir", "/tmp"),
        ("CONFIG", "GET", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("MODULE", "LIST"),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "SETUSER", "intruder", "on", ">x", "+@all"),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("SAVE",),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command)
    assert app.ping()  # the server is still there
    assert app.bgrewriteaof()  # GDPR erasure rewrites the AOF after deleting
    assert "aof_enabled" in app.info("persistence")  # and watches the rewrite


def test_redis_is_local_protected_and_not_root(running_services: Settings) -> None:
    admin = services.redis_admin_client(running_services)
    assert admin.config_get("protected-mode") == {"protected-mode": "yes"}
    assert admin.config_get("bind") == {"bind": "127.0.0.1"}
    root = running_services.state_dir / "redis"
    pid = int((root / "redis.pid").read_text())
    assert Path(f"/proc/{pid}").stat().st_uid != 0
    postmaster = running_services.state_dir / "postgres" / "data" / "postmaster.pid"
    assert Path(f"/proc/{postmaster.read_text().split()[0]}").stat().st_uid != 0
    config = (root / "redis.conf").read_text()
    assert not any(secret in config for secret in _secrets(running_services))


# --- local state -----------------------------------------------------------------------------


def test_credentials_and_state_are_private(running_services: Settings) -> None:
    state = running_services.state_dir
    assert _mode(state / CREDENTIALS_FILE) == 0o600
    # As root the servers run as system users, who must traverse (not list) the state folder.
    assert _mode(state) == (0o711 if os.geteuid() == 0 else 0o700)
    for folder in ("postgres", "redis", "lake", "landing", "airflow"):
        assert _mode(state / folder) == 0o700, folder
    for path in (state / "redis").rglob("*"):
        assert not _mode(path) & 0o077, path  # the AOF included


def test_state_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        settings = isolated_settings(tmp_path / "new-home")
        creds = ensure_local_credentials(settings.state_dir)
    finally:
        os.umask(previous)
    assert _mode(settings.state_dir) == 0o700
    assert _mode(settings.state_dir / CREDENTIALS_FILE) == 0o600
    assert ensure_local_credentials(settings.state_dir) == creds  # generated once
    assert settings.local_credentials == creds
    assert creds.postgres_password in settings.postgres_url
    assert creds.redis_password in settings.redis_dsn


# --- no secret printed or logged ---------------------------------------------------------------


def test_cli_prints_no_secret(running_services: Settings, settings_env: dict[str, str]) -> None:
    api_key = "probe-api-key-0123456789"
    secrets = [*_secrets(running_services), api_key]
    external = dict(settings_env, AUDOTICS_API_KEYS=api_key,
                    AUDOTICS_DATABASE_URL=running_services.postgres_url,
                    AUDOTICS_REDIS_URL=running_services.redis_dsn)  # fmt: skip
    for env, command in (
        (external, ["settings"]),
        (settings_env, ["services", "status"]),
        (external, ["services", "status"]),
    ):
        done = subprocess.run(
            ["audotics", *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        output = done.stdout + done.stderr
        assert not [s for s in secrets if s in output], command
        assert "***" in output, command
    assert (
        "AUDOTICS_API_KEYS=***"
        in subprocess.run(
            ["audotics", "settings"], env=external, capture_output=True, text=True
        ).stdout
    )


def test_log_lines_mask_secrets(running_services: Settings, caplog) -> None:
    password = _creds(running_services).postgres_password
    with caplog.at_level(logging.INFO):
        logging.getLogger("audotics.probe").info("connecting to %s", running_services.postgres_url)
        logging.getLogger("audotics.probe").info("the password is %s", password)
    assert password not in caplog.text
    assert "audotics:***@127.0.0.1" in caplog.text
    assert mask_secrets("redis://:p4ss@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_secrets("s3cret", "api_keys") == "***"


def test_a_trust_cluster_from_before_is_refused_with_the_fix(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "old-home")
    data = settings.state_dir / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("18\n")
    (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
    with pytest.raises(services.ServiceError, match="predates password authentication"):
        services.EmbeddedPostgres(settings).up()


def test_compose_publishes_on_loopback_only_and_takes_its_secrets_from_the_environment() -> None:
    import yaml

    compose = yaml.safe_load((REPO / "infra" / "docker-compose.yml").read_text())
    published = [
        (name, str(port)) for name, service in compose["services"].items()
        for port in service.get("ports", [])
    ]  # fmt: skip
    assert published, "compose publishes no port: the check would prove nothing"
    assert [p for p in published if not p[1].startswith("127.0.0.1:")] == []
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items() if isinstance(environment, dict) else ():
            literal = re.search(r"://[^:/@]*:[^@$]+@", str(value))  # a password in a URL
            assert not literal and ("PASSWORD" not in key or "${" in str(value)), (name, key)
