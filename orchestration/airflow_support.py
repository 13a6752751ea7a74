"""What every Airflow DAG of the platform shares: Assets for lake tables (the links between
DAGs), each DAG's schedule and outlets taken from its stage in `orchestration.stages`, retries
with backoff, timeouts, a failure callback that says which task failed and why, the daily
data-interval timetable, the snapshot date a run is bound to, and the `setting()` macro.

Asset URIs are logical (`audotics://lake/<layer>/<table>`), not storage paths, so DAG files
parse the same whether the lake is a local folder or s3://. Nothing here reads the settings or
opens a connection when a DAG file is parsed: the settings are read by tasks, at run time.
Imported by DAG files only (it imports Airflow).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Asset, AssetAny, Param, task
from airflow.sdk.configuration import conf
from airflow.timetables.interval import CronDataIntervalTimetable

from audotics.lake.tables import Table
from orchestration.stages import Stage

log = logging.getLogger("audotics.dags")

# The first day of the demo world; backfills may start anywhere.
START_DATE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def lake_asset(table: Table) -> Asset:
    return Asset(name=table.path, uri=f"audotics://lake/{table.path}", group="lake")


def schedule(stage: Stage) -> list[Asset] | AssetAny:
    """The DAG's asset schedule, from its stage's trigger: all of the tables, or any of them."""
    if stage.trigger is None:
        raise ValueError(f"stage {stage.name} is not triggered by tables")
    assets = [lake_asset(table) for table in stage.trigger.tables]
    return assets if stage.trigger.mode == "all" else AssetAny(*assets)


def outlets(stage: Stage, *written: Table) -> list[Asset]:
    """The Assets of a task that writes `written`, which must be among its stage's writes."""
    undeclared = [table.path for table in written if table not in stage.writes]
    if undeclared:
        raise ValueError(f"stage {stage.name} does not declare that it writes {undeclared}")
    return [lake_asset(table) for table in written]


def daily() -> CronDataIntervalTimetable:
    """Runs after each UTC day ends, over [day, day + 1): `data_interval_start` is the day."""
    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def as_of_param(description: str) -> Param:
    """The optional snapshot date of manual runs and backfills (YYYY-MM-DD)."""
    return Param(None, type=["null", "string"], format="date", description=description)


def setting(name: str) -> Any:
    """A setting, for templates (`{{ setting('spark_driver_memory') }}`): read when the task
    runs, on the worker, never when the DAG file is parsed."""
    from audotics.settings import get_settings

    return getattr(get_settings(), name)


MACROS = {"setting": setting}  # the DAGs' user_defined_macros


# --- the snapshot date a run is bound to --------------------------------------------------------


def complete_until(
    input_interval_ends: Mapping[str, Iterable[dt.datetime | None]],
) -> dt.datetime | None:
    """The instant every input is complete until: the earliest of the inputs' newest data
    interval ends (unknown ends ignored); None when no end is known."""
    newest_per_input = [
        max(known) for ends in input_interval_ends.values() if (known := [e for e in ends if e])
    ]
    return min(newest_per_input) if newest_per_input else None


def snapshot_date_for(
    input_interval_ends: Mapping[str, Iterable[dt.datetime | None]], fallback: dt.datetime
) -> dt.date:
    """The snapshot date a run may build: the last whole UTC day before `complete_until` of its
    inputs (an end at 11-04 00:00 completes 11-03, one at 11-04 06:00 too); with no end known,
    the day before `fallback`."""
    horizon = complete_until(input_interval_ends) or fallback
    return horizon.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def _end_of(as_of: str) -> dt.datetime:
    """The data interval end of a snapshot date: the next UTC midnight."""
    day = dt.date.fromisoformat(as_of) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _source_run(event):
    """The run that produced an asset event (Task SDK; only inside a running task)."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    return AssetEventDagRunReferenceResult.from_asset_event_dag_run_reference(event).source_dag_run


def data_end(run, as_of: str | None = None, source_run=_source_run) -> dt.datetime | None:
    """Where a DAG run's data ends: its `as_of` (conf or param), else its data interval end,
    else, for an asset-triggered run (which has no interval of its own), `complete_until` of
    the runs that produced its triggering events, traced back the same way. None if unknown."""
    as_of = as_of or (run.conf or {}).get("as_of")
    if as_of:
        return _end_of(as_of)
    if run.data_interval_end:
        return run.data_interval_end
    ends: dict[str, list[dt.datetime | None]] = {}
    for event in run.consumed_asset_events:
        source = source_run(event)
        ends.setdefault(event.asset.name, []).append(
            data_end(source, source_run=source_run) if source else None
        )
    return complete_until(ends)


def snapshot_date(run, params: Mapping[str, Any] | None, source_run=_source_run) -> dt.date:
    """The snapshot date of a DAG run: the `as_of` param (manual runs, backfills), else the
    last day complete in every input that triggered it, else the day before the run."""
    end = data_end(run, (params or {}).get("as_of"), source_run)
    return snapshot_date_for({"run": [end]}, fallback=run.run_after)


@task
def as_of_date(params=None, dag_run=None) -> str:
    """The snapshot date D this run builds (YYYY-MM-DD): see `snapshot_date`."""
    return snapshot_date(dag_run, params).isoformat()


# --- retries, timeouts, failures ----------------------------------------------------------------


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
    # Airflow's own setting, [core] default_task_retry_delay: `audotics airflow` sets 30 s, a
    # deployment sets its own, a test of failures shortens it.
    "retry_delay": dt.timedelta(seconds=conf.getfloat("core", "default_task_retry_delay")),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": log_failure,
}
