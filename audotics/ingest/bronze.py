"""Bronze: every line of a landing day exactly as received, with where it came from."""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow as pa

from audotics import lake
from audotics.ingest.landing import landing_files, read_lines
from audotics.settings import Settings

log = logging.getLogger(__name__)
LAYER, TABLE = "bronze", "events"
SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("raw", pa.binary(), nullable=False),  # bytes as received: nothing re-encoded
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("landing_date", pa.date32(), nullable=False),
    ]
)


def day_predicate(day: dt.date) -> str:
    return f"landing_date = '{day.isoformat()}'"


def land_bronze(settings: Settings, day: dt.date, run_id: str) -> int:
    """Replace the day's bronze partition with its landing files; returns rows written."""
    files = landing_files(settings, day)
    now = dt.datetime.now(dt.UTC)
    batches = []
    for file in files:
        lines = read_lines(file)
        count = len(lines)
        batches.append(
            pa.record_batch(
                [
                    pa.array([file.name] * count, pa.string()),
                    pa.array(range(1, count + 1), pa.int64()),
                    pa.array(lines, pa.binary()),
                    pa.array([run_id] * count, pa.string()),
                    pa.array([now] * count, pa.timestamp("us", tz="UTC")),
                    pa.array([day] * count, pa.date32()),
                ],
                schema=SCHEMA,
            )
        )
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    lake.write_arrow(
        settings, LAYER, TABLE, table,
        mode="overwrite", partition_by=["landing_date"], predicate=day_predicate(day),
        metadata={"run_id": run_id, "interval": day.isoformat(), "step": "land_bronze"},
    )  # fmt: skip
    log.info("bronze/events %s: %d lines from %d files", day, table.num_rows, len(files))
    return table.num_rows


def read_day(settings: Settings, day: dt.date) -> pa.Table:
    """The day's bronze rows in landing order (file, line)."""
    import pyarrow.dataset as ds

    rows = lake.read_arrow(settings, LAYER, TABLE, filter=ds.field("landing_date") == day)
    return rows.sort_by([("source_file", "ascending"), ("line_number", "ascending")])
