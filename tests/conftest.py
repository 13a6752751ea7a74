"""Shared fixtures: real embedded PostgreSQL and Redis on free ports in a temporary state folder,
started once per test session, and one local SparkSession. No mocks."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from audotics import services
from audotics.services import free_port
from audotics.settings import Settings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]


def isolated_settings(home: Path, **overrides: object) -> Settings:
    """Settings of an isolated platform instance: its own state folder and free ports."""
    values: dict[str, object] = dict(
        home=home,
        postgres_port=free_port(),
        redis_port=free_port(),
        spark_master="local[2]",
        spark_driver_memory="2g",
        spark_shuffle_partitions=2,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_settings():
    return isolated_settings


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    # Not under pytest's tmp root: pytest resets that to mode 0700, and as root the embedded
    # PostgreSQL runs as an unprivileged user that must be able to reach its data folder.
    home = Path(tempfile.mkdtemp(prefix="audotics-tests-"))
    yield isolated_settings(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for subprocesses (the CLI, `airflow dags test`) that targets `settings`."""
    return environment_for(settings)


@pytest.fixture(scope="session")
def running_services(settings: Settings) -> Iterator[Settings]:
    """Real embedded PostgreSQL and Redis for the whole session."""
    services.up(settings)
    yield settings
    services.down(settings)


@pytest.fixture(scope="session")
def spark(settings: Settings):
    from audotics.spark import spark_session

    session = spark_session(settings, "audotics-tests")
    yield session
    session.stop()


# Redis has 16 databases; 0 is the session's. Each platform gets the next one, flushed first, so
# a number is reused only after the module that had it is long done (modules run one by one).
_redis_databases = itertools.cycle(range(1, 16))


@pytest.fixture(scope="session")
def isolated_platform(running_services: Settings, tmp_path_factory: pytest.TempPathFactory):
    """Factory: a platform instance of its own (state folder, PostgreSQL database, Redis db) on
    the session's real servers, so test modules never see each other's data."""
    import psycopg

    from audotics.db import libpq_url

    def make(name: str, **overrides: object) -> Settings:
        database = f"test_{name}"
        with psycopg.connect(libpq_url(running_services), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')
            conn.execute(f'create database "{database}"')
        base = running_services.postgres_url.rsplit("/", 1)[0]
        redis_db = next(_redis_databases)
        redis.Redis(port=running_services.redis_port, db=redis_db).flushdb()
        return isolated_settings(
            tmp_path_factory.mktemp(name),
            database_url=f"{base}/{database}",
            redis_url=f"redis://127.0.0.1:{running_services.redis_port}/{redis_db}",
            **overrides,
        )

    return make


def environment_for(settings: Settings) -> dict[str, str]:
    """Environment for a subprocess (the CLI, `airflow dags test`) that targets `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDOTICS_")}
    env.update(
        AUDOTICS_HOME=str(settings.home),
        AUDOTICS_SPARK_MASTER=settings.spark_master,
        AUDOTICS_SPARK_DRIVER_MEMORY=settings.spark_driver_memory,
        AUDOTICS_SPARK_SHUFFLE_PARTITIONS=str(settings.spark_shuffle_partitions),
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
    )
    for name in ("database_url", "redis_url"):
        if getattr(settings, name):
            env[f"AUDOTICS_{name.upper()}"] = getattr(settings, name)
    env.setdefault("AUDOTICS_POSTGRES_PORT", str(settings.postgres_port))
    env.setdefault("AUDOTICS_REDIS_PORT", str(settings.redis_port))
    return env


@pytest.fixture(scope="session")
def env_for():
    """Factory: the environment of a subprocess (CLI, `airflow dags test`) for some settings."""
    return environment_for


@pytest.fixture(scope="session")
def airflow_home(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated Airflow home (SQLite) for `airflow dags test`; returns its environment."""
    import subprocess

    from audotics.airflow_local import airflow_env

    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in airflow_env(settings).items() if k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "airflow"), "db", "migrate"],
        env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip
    return env
