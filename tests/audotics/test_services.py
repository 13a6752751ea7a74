"""The embedded services: start, report, stop, and keep their data across restarts."""

from __future__ import annotations

import subprocess

import psycopg
import redis

from audotics import services
from audotics.db import libpq_url
from audotics.settings import Settings


def test_up_status_down_keeps_data(tmp_path, make_settings) -> None:
    own = make_settings(tmp_path)
    statuses = services.up(own)
    assert [(s.name, s.running, s.embedded) for s in statuses] == [
        ("postgres", True, True),
        ("redis", True, True),
    ]
    with psycopg.connect(libpq_url(own), autocommit=True) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (7)")
    redis.Redis.from_url(own.redis_dsn).set("kept", "yes")

    credentials = own.local_credentials
    assert credentials is not None

    services.down(own)
    assert [s.running for s in services.status(own)] == [False, False]

    services.up(own)  # a second `up` finds the data of the first, with the same credentials
    assert own.local_credentials == credentials
    with psycopg.connect(libpq_url(own)) as conn:
        assert conn.execute("select x from kept").fetchone() == (7,)
    assert redis.Redis.from_url(own.redis_dsn).get("kept") == b"yes"
    services.up(own)  # idempotent while running
    services.down(own)


def test_external_servers_are_used_not_started(running_services: Settings, tmp_path) -> None:
    external = Settings(
        home=tmp_path,
        database_url=running_services.postgres_url,
        redis_url=running_services.redis_dsn,
        _env_file=None,
    )
    statuses = services.up(external)
    assert [(s.name, s.running, s.embedded) for s in statuses] == [
        ("postgres", True, False),
        ("redis", True, False),
    ]
    assert not (tmp_path / "postgres").exists()


def test_cli_reports_unreachable_external_redis(settings_env, tmp_path) -> None:
    env = dict(settings_env, AUDOTICS_HOME=str(tmp_path), AUDOTICS_REDIS_URL="redis://127.0.0.1:1/0",
               AUDOTICS_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    result = subprocess.run(
        ["audotics", "services", "status"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "redis      down  external" in result.stdout
    assert "postgres   down  external" in result.stdout
