"""ops/ingest_runs: one row per run and interval, counted from the tables themselves, and the
reconciliation gate: input_records = bronze_rows = silver_rows + quarantine_rows + duplicate_rows.

input_records is counted from the landing files' bytes (landing.count_records), independently
of the parser that filled bronze."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from expectations import runs as run_suites
from expectations.validation import validate
from ingestion.landing import count_records, landing_files

log = logging.getLogger(__name__)


def _rows_of_day(settings: Settings, table: tables.Table, day: dt.date) -> int:
    if not lake.exists(settings, table):
        return 0
    scan = lake.dataset(settings, table)
    return scan.count_rows(filter=ds.field("landing_date") == day)


def reconcile(
    settings: Settings,
    day: dt.date,
    run_id: str,
    *,
    duplicate_rows: int,
    unknown_fields: dict[str, int],
    started_at: dt.datetime,
) -> dict:
    """Count, record the run, and stop with a clear message if anything is unaccounted for."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    row = {
        "run_id": run_id,
        "interval_start": start,
        "interval_end": start + dt.timedelta(days=1),
        "input_records": sum(count_records(f) for f in landing_files(settings, day)),
        "bronze_rows": _rows_of_day(settings, tables.BRONZE_EVENTS, day),
        "silver_rows": _rows_of_day(settings, tables.SILVER_EVENTS, day),
        "quarantine_rows": _rows_of_day(settings, tables.QUARANTINE_EVENTS, day),
        "duplicate_rows": duplicate_rows,
        "unknown_fields": json.dumps(unknown_fields, sort_keys=True),
        "started_at": started_at,
    }
    accounted = row["silver_rows"] + row["quarantine_rows"] + row["duplicate_rows"]
    batch = pd.DataFrame([{**row, "accounted_rows": accounted}])
    outcome = validate(settings, run_suites.reconciliation(), batch, f"{day.isoformat()}__{run_id}")
    row["finished_at"] = dt.datetime.now(dt.UTC)
    row["status"] = "failed" if outcome.critical_failures else "success"
    lake.write_arrow(
        settings, tables.INGEST_RUNS, pa.Table.from_pylist([row], tables.INGEST_RUNS.schema),
        mode="overwrite",
        predicate=f"run_id = '{run_id}' AND interval_start = '{start.isoformat()}'",
        metadata={"run_id": run_id, "interval": day.isoformat(), "step": "reconcile"},
    )  # fmt: skip
    log.info("%s %s: %s", tables.INGEST_RUNS, day, row)
    outcome.raise_if_critical(str(tables.INGEST_RUNS))
    return row
