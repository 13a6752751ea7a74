"""Shared fixtures: real embedded PostgreSQL and Redis on free ports in a temporary state folder,
started once per test session, and one local SparkSession. No mocks."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from audotics import services
from audotics.settings import Settings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory.mktemp("audotics-home"))


@pytest.fixture(scope="session")
def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for subprocesses (the CLI, `airflow dags test`) that targets `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDOTICS_")}
    env.update(
        AUDOTICS_HOME=str(settings.home),
        AUDOTICS_POSTGRES_PORT=str(settings.postgres_port),
        AUDOTICS_REDIS_PORT=str(settings.redis_port),
        AUDOTICS_SPARK_MASTER=settings.spark_master,
        AUDOTICS_SPARK_DRIVER_MEMORY=settings.spark_driver_memory,
        AUDOTICS_SPARK_SHUFFLE_PARTITIONS=str(settings.spark_shuffle_partitions),
        OPENBLAS_NUM_THREADS="1",
    )
    return env


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
