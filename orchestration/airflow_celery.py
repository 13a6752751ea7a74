"""Airflow's Celery form on this machine (`audotics airflow --executor celery`): metadata and
task results in PostgreSQL, Redis as the broker, and each component its own process, as a
deployment runs them. The same variables configure a real deployment's components."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from psycopg import sql

from audotics import services
from audotics.errors import AudoticsError
from audotics.settings import LOCAL_POSTGRES_APP_USER, Settings

AIRFLOW_DATABASE = "airflow"
BROKER_REDIS_DB = 1  # the platform's keys live in its own database; Celery's apart from them


class AirflowSetupError(AudoticsError):
    """Airflow's Celery form cannot be set up; the message says what is missing."""


def metadata_url(settings: Settings) -> str:
    """Airflow's metadata database: the setting, or the embedded server's `airflow` database
    (created here, owned by the application role: pg_hba admits that role alone over TCP)."""
    if settings.airflow_database_url:
        return settings.airflow_database_url
    if not settings.embedded_postgres:
        raise AirflowSetupError(
            "AUDOTICS_DATABASE_URL points at an external PostgreSQL: set "
            "AUDOTICS_AIRFLOW_DATABASE_URL to the database Airflow's metadata goes into"
        )
    with services.postgres_admin_connection(settings) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (AIRFLOW_DATABASE,)
        ).fetchone()
        if exists is None:
            conn.execute(
                sql.SQL("create database {} owner {}").format(
                    sql.Identifier(AIRFLOW_DATABASE), sql.Identifier(LOCAL_POSTGRES_APP_USER)
                )
            )
    return settings.postgres_url.rsplit("/", 1)[0] + f"/{AIRFLOW_DATABASE}"


def broker_url(settings: Settings) -> str:
    if settings.airflow_broker_url:
        return settings.airflow_broker_url
    return urlunsplit(urlsplit(settings.redis_dsn)._replace(path=f"/{BROKER_REDIS_DB}"))


def celery_env(settings: Settings) -> dict[str, str]:
    """What every component of the Celery form adds to the local Airflow environment."""
    database = metadata_url(settings)
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CELERY__BROKER_URL": broker_url(settings),
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.airflow_worker_concurrency),
        # The scheduler signs the tasks' tokens and the API server checks them: one secret for
        # the components of this start (standalone shares it within its one process tree).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
    }


def celery_components(workers: int) -> list[tuple[str, list[str]]]:
    """(name, command) of each process. Workers and triggerer serve no logs over HTTP (they
    would all want port 8793/8794): on one machine the API server reads the log files."""
    return [
        ("api-server", ["airflow", "api-server"]),
        ("scheduler", ["airflow", "scheduler"]),
        ("dag-processor", ["airflow", "dag-processor"]),
        ("triggerer", ["airflow", "triggerer", "--skip-serve-logs"]),
        *(
            (f"worker-{i}", ["airflow", "celery", "worker", "--skip-serve-logs",
                             "--celery-hostname", f"worker-{i}@%h"])
            for i in range(1, workers + 1)
        ),
    ]  # fmt: skip
