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
from audotics.settings import LOCAL_POSTGRES_APP_USER, Settings
from tests.support import REPO, environment_for, isolated_settings

# Debian's chromium, headless, for the pages the project serves (dashboards, API docs, docs).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these its calls out are refused and stall it
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "Chromium not found: run `make setup` (as root it installs Debian's chromium), "
            "install chromium yourself, or set CHROMIUM_PATH"
        )
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # only the browser tests load it

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


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
    the session's real servers, so test modules never see each other's data. The database is
    made by the superuser and owned by the application role, like the embedded `audotics` one;
    the URLs carry the session's generated credentials (external servers to the instance)."""

    def make(name: str, **overrides: object) -> Settings:
        database = f"test_{name}"
        with services.postgres_admin_connection(running_services) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')
            conn.execute(f'create database "{database}" owner "{LOCAL_POSTGRES_APP_USER}"')
        base = running_services.postgres_url.rsplit("/", 1)[0]
        redis_db = next(_redis_databases)
        redis_url = f"{running_services.redis_dsn.rsplit('/', 1)[0]}/{redis_db}"
        redis.Redis.from_url(redis_url).flushdb()
        return isolated_settings(
            tmp_path_factory.mktemp(name),
            database_url=f"{base}/{database}",
            redis_url=redis_url,
            **overrides,
        )

    return make


@pytest.fixture(scope="session")
def env_for():
    """Factory: the environment of a subprocess (CLI, `airflow dags test`) for some settings."""
    return environment_for


@pytest.fixture(scope="session")
def airflow_home(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated Airflow home (SQLite) for `airflow dags test`; returns its environment."""
    import subprocess

    from orchestration.airflow_local import airflow_env

    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in airflow_env(settings).items() if k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "airflow"), "db", "migrate"],
        env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip
    return env


# Tests that need a real server, Spark or Airflow: `pytest -m "not integration"` (make test-unit)
# runs the fast pure tests alone; `make test` runs both.
INTEGRATION_FIXTURES = frozenset(
    {"running_services", "isolated_platform", "spark", "airflow_home", "settings_env", "env_for",
     "make_settings"}
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
