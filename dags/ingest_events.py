"""
### ingest_events

One run per UTC landing day: the operational catalog and that day's landed event files go into
the Delta lake, behind Great Expectations gates. The day is the run's logical date, which for
scheduled runs is the start of the daily data interval `[day, day + 1)`; so
`airflow dags test ingest_events 2026-11-01` ingests 2026-11-01.

1. `extract_catalog`: PostgreSQL `app.*` changed since the last run -> `silver/<table>` (SCD2).
2. `land_bronze`: record the run in `ops/ingest_runs` as `running`, then stream every line of
   `landing/events/date=<day>/` -> `bronze/events` as received, counting the records from the
   same bytes (a line past `AUDOTICS_INGEST_MAX_LINE_BYTES` cut; an unreadable file, or one past
   `AUDOTICS_INGEST_MAX_FILE_BYTES`, fails the run naming the file, with nothing committed).
3. `refine_events`: parse and validate; failures -> `quarantine/events` with reasons;
   duplicates dropped; the rest -> `silver/events`. A critical expectation stops the run here.
4. `reconcile`: the run's final row; input = bronze = silver + quarantine + duplicates, or
   fail. A day with no files or too few records (the volume gate) fails here with
   `AUDOTICS_INGEST_VOLUME_GATE=fail`: downstream DAGs see no new data.
5. `volume_gate`: with the gate at `warn`, a flagged day still publishes its tables, and this
   task fails (no retry) with the reason, so the run is not green.
6. `data_docs`: render the GX Data Docs.

Every task replaces exactly its interval's slice and records its step in the run row, so reruns
and backfills are idempotent, and a run that dies says which step did not finish.
Logic lives in `ingestion`; this file only orchestrates.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import dag, task

from audotics.lake import tables
from orchestration.airflow_support import DEFAULT_ARGS, START_DATE, daily, outlets
from orchestration.stages import INGEST

log = logging.getLogger(__name__)


def _day(logical_date: dt.datetime) -> dt.date:
    return logical_date.astimezone(dt.UTC).date()


@dag(
    dag_id=INGEST.dag_id,
    schedule=daily(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["ingestion", "lake", "quality"],
)
def ingest_events():
    @task(outlets=outlets(INGEST, *tables.SCD2_TABLES))
    def extract_catalog(run_id: str | None = None) -> dict[str, int]:
        from audotics.settings import get_settings
        from ingestion.catalog_extract import extract_catalog as extract

        return extract(get_settings(), run_id)

    @task(outlets=outlets(INGEST, tables.BRONZE_EVENTS))
    def land_bronze(logical_date=None, run_id: str | None = None) -> int:
        from audotics.settings import get_settings
        from ingestion.days import land_day

        return land_day(get_settings(), _day(logical_date), run_id)

    @task
    def refine_events(logical_date=None, run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from audotics.settings import get_settings
        from ingestion.days import refine_events as refine

        return asdict(refine(get_settings(), _day(logical_date), run_id))

    @task(
        outlets=outlets(INGEST, tables.SILVER_EVENTS, tables.QUARANTINE_EVENTS, tables.INGEST_RUNS)
    )
    def reconcile(logical_date=None, run_id: str | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from audotics.settings import get_settings
        from expectations.validation import QualityGateError
        from ingestion.runs import reconcile as record

        try:
            row = record(get_settings(), _day(logical_date), run_id)
        except QualityGateError as exc:  # a verdict on the day's data: retrying cannot change it
            raise AirflowFailException(str(exc)) from exc
        return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}

    @task
    def volume_gate(run: dict) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        if run["status"] != "success":
            log.warning("ingest_events %s: %s", run["interval_start"], run["status_reason"])
            raise AirflowFailException(f"{run['status']}: {run['status_reason']}")
        return run["status"]

    @task(trigger_rule="all_done")
    def data_docs() -> str:
        from audotics.settings import get_settings
        from expectations.validation import build_data_docs

        return str(build_data_docs(get_settings()))

    run = reconcile()
    extract_catalog() >> land_bronze() >> refine_events() >> run
    volume_gate(run)
    run >> data_docs()


ingest_events()
