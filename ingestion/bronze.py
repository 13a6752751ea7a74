"""Bronze: every line of a landing day exactly as received, with where it came from."""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow as pa
import pyarrow.dataset as ds

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from ingestion.landing import landing_files, read_lines

log = logging.getLogger(__name__)


def day_predicate(day: dt.date) -> str:
    return f"landing_date = '{day.isoformat()}'"


def land_bronze(settings: Settings, day: dt.date, run_id: str) -> int:
    """Replace the day's bronze partition with its landing files; returns rows written."""
    files = landing_files(settings, day)
    now = dt.datetime.now(dt.UTC)
    schema = tables.BRONZE_EVENTS.schema
    batches = []
    for file in files:
        lines = read_lines(file)
        count = len(lines)
        columns = {
            "source_file": [file.name] * count,
            "line_number": range(1, count + 1),
            "raw": lines,
            "run_id": [run_id] * count,
            "ingested_at": [now] * count,
            "landing_date": [day] * count,
        }
        batches.append(
            pa.record_batch([pa.array(columns[f.name], f.type) for f in schema], schema=schema)
        )
    table = pa.Table.from_batches(batches, schema=schema)
    lake.write_arrow(
        settings, tables.BRONZE_EVENTS, table, mode="overwrite", predicate=day_predicate(day),
        metadata={"run_id": run_id, "interval": day.isoformat(), "step": "land_bronze"},
    )  # fmt: skip
    log.info("%s %s: %d lines from %d files", tables.BRONZE_EVENTS, day, table.num_rows, len(files))
    return table.num_rows


def read_day(settings: Settings, day: dt.date) -> pa.Table:
    """The day's bronze rows in landing order (file, line)."""
    rows = lake.read_arrow(settings, tables.BRONZE_EVENTS, filter=ds.field("landing_date") == day)
    return rows.sort_by([("source_file", "ascending"), ("line_number", "ascending")])
