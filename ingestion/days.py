"""One landing day end to end, as the DAG runs it task by task: catalog, bronze, refine,
reconcile. Used by the CLI and `audotics run`; the DAG calls the same steps one per task."""

from __future__ import annotations

import datetime as dt
import logging

from audotics.settings import Settings
from expectations.validation import build_data_docs
from ingestion import bronze, catalog_extract, refine, runs

log = logging.getLogger(__name__)


def ingest_day(settings: Settings, day: dt.date, run_id: str) -> dict:
    started_at = dt.datetime.now(dt.UTC)
    bronze.land_bronze(settings, day, run_id)
    refined = refine.refine_day(settings, day, run_id)
    return runs.reconcile(
        settings, day, run_id,
        duplicate_rows=refined.duplicate_rows, unknown_fields=refined.unknown_fields,
        started_at=started_at,
    )  # fmt: skip


def ingest(settings: Settings, days: list[dt.date], run_id: str) -> list[dict]:
    """Catalog first (events are checked against it), then each day, then the Data Docs."""
    catalog_extract.extract_catalog(settings, run_id)
    results = []
    for number, day in enumerate(days, 1):
        log.info("ingesting landing day %s (%d of %d)", day, number, len(days))
        results.append(ingest_day(settings, day, run_id))
    build_data_docs(settings)
    return results
