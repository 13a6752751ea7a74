"""
### ingest_events

One run per UTC landing day: the operational catalog and that day's landed event files go into
the Delta lake, behind Great Expectations gates. The day is the run's logical date, which for
scheduled runs is the start of the daily data interval `[day, day + 1)`; so
`airflow dags test ingest_events 2026-11-01` ingests 2026-11-01.

1. `extract_catalog`: PostgreSQL `app.*` changed since the last run -> `silver/<table>` (SCD2).
2. `land_bronze`: every line of `landing/events/date=<day>/` -> `bronze/events` as received.
3. `refine_events`: parse and validate; failures -> `quarantine/events` with reasons;
   duplicates dropped; the rest -> `silver/events`. A critical expectation stops the run here.
4. `reconcile`: `ops/ingest_runs`; input = bronze = silver + quarantine + duplicates, or fail.
5. `data_docs`: render the GX Data Docs.

Every task replaces exactly its interval's slice, so reruns and backfills are idempotent.
Logic lives in `ingestion`; this file only orchestrates.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from audotics.lake import tables
from orchestration.airflow_support import DEFAULT_ARGS, START_DATE, daily, outlets
from orchestration.stages import INGEST


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
    def land_bronze(logical_date=None, run_id: str | None = None) -> dict:
        from audotics.settings import get_settings
        from ingestion.bronze import land_bronze as land

        started_at = dt.datetime.now(dt.UTC).isoformat()
        return {"rows": land(get_settings(), _day(logical_date), run_id), "started_at": started_at}

    @task
    def refine_events(logical_date=None, run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from audotics.settings import get_settings
        from ingestion.refine import refine_day

        return asdict(refine_day(get_settings(), _day(logical_date), run_id))

    @task(
        outlets=outlets(INGEST, tables.SILVER_EVENTS, tables.QUARANTINE_EVENTS, tables.INGEST_RUNS)
    )
    def reconcile(landed: dict, refined: dict, logical_date=None, run_id=None) -> dict:
        from audotics.settings import get_settings
        from ingestion.runs import reconcile as record

        row = record(
            get_settings(),
            _day(logical_date),
            run_id,
            duplicate_rows=refined["duplicate_rows"],
            unknown_fields=refined["unknown_fields"],
            started_at=dt.datetime.fromisoformat(landed["started_at"]),
        )
        return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}

    @task(trigger_rule="all_done")
    def data_docs() -> str:
        from audotics.settings import get_settings
        from expectations.validation import build_data_docs

        return str(build_data_docs(get_settings()))

    landed = land_bronze()
    refined = refine_events()
    extract_catalog() >> landed >> refined
    reconcile(landed, refined) >> data_docs()


ingest_events()
