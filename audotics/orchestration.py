"""What every Airflow DAG of the platform shares: retries with backoff, timeouts, a failure
callback that says which task failed and why, and the daily data-interval timetable.

Imported by DAG files only (it imports Airflow)."""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import Param
from airflow.timetables.interval import CronDataIntervalTimetable

log = logging.getLogger("audotics.dags")

# The first day of the demo world; backfills may start anywhere.
START_DATE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def daily() -> CronDataIntervalTimetable:
    """Runs after each UTC day ends, over [day, day + 1): `data_interval_start` is the day."""
    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def as_of_param(description: str) -> Param:
    """The optional snapshot date of manual runs and backfills (YYYY-MM-DD)."""
    return Param(None, type=["null", "string"], format="date", description=description)


def log_failure(context) -> None:
    """Name the DAG, task, interval and reason in one line, for the logs and any alerting."""
    ti = context.get("task_instance")
    log.error(
        "FAILED %s.%s for interval %s (try %s): %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        context.get("data_interval_start"),
        getattr(ti, "try_number", "?"),
        context.get("exception"),
    )


DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": log_failure,
}
