"""Bronze to silver: run the day through an ingestion engine (`ingestion.engines`, the rules of
`ingestion.rules`), gate it, and commit quarantine and silver.

The engine's batches are spooled to local Parquet files (memory is bounded by the batch); the
duplicates are decided once the whole day is seen, the gates run on the day's counts, and only
then is each output replaced for the landing day in one commit (`landing_date = D`), streamed
from its spool. So a rerun of the day gives the same tables, an event resent on another day is
a duplicate whichever day is ingested first, and a failed gate commits nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from audotics.vocabulary import EVENT_TYPES
from expectations import events as event_suites
from expectations.validation import validate
from ingestion import bronze, rules
from ingestion.engines import CANDIDATES, LINES, engine_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefineResult:
    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    duplicate_rows: int
    unknown_fields: dict[str, int]


class _Spool:
    """Record batches parked in a local Parquet file, then read back one row group (one batch)
    at a time. Mostly unique text: no dictionary."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema, self.rows = path, schema, 0
        self._writer = pq.ParquetWriter(path, schema, compression="lz4", use_dictionary=False)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        file = pq.ParquetFile(self.path)
        for group in range(file.num_row_groups):
            yield from file.read_row_group(group).to_batches()


class _SilverProfile:
    """What the gates check of the silver batch, counted on the candidates as they are spooled
    (a superset of the silver rows: duplicates are clean rows too)."""

    def __init__(self) -> None:
        self.columns: list[str] = tables.SILVER_EVENTS.schema.names
        self.nulls: Counter[str] = Counter()
        self.unknown_event_types = 0
        self._known = pa.array(EVENT_TYPES, pa.string())

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.columns = [name for name in batch.schema.names if name not in LINES.names]
        for name in self.columns:
            self.nulls[name] += batch.column(name).null_count
        known = pc.is_in(batch.column("event_type"), value_set=self._known)
        self.unknown_event_types += batch.num_rows - pc.sum(known).as_py()


def _without(
    duplicates: pa.Table, candidates: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """The candidates whose line is not among `duplicates`, as silver rows."""
    groups = duplicates.group_by("source_file").aggregate([("line_number", "list")])
    by_file = {
        group["source_file"]: pa.array(group["line_number_list"], pa.int64())
        for group in groups.to_pylist()
    }
    silver = tables.SILVER_EVENTS.schema.names
    for batch in candidates:
        if by_file:
            files, lines = batch.column("source_file"), batch.column("line_number")
            drop = pa.repeat(False, batch.num_rows)
            for file, numbers in by_file.items():
                here = pc.and_(pc.equal(files, file), pc.is_in(lines, value_set=numbers))
                drop = pc.or_(drop, here)
            batch = batch.filter(pc.invert(drop))
        yield batch.select(silver)


def _spool_folder(settings: Settings) -> Path:
    folder = Path(settings.state_dir) / "refine"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def refine_day(settings: Settings, day: dt.date, run_id: str) -> RefineResult:
    """Refine landing day `day` from bronze; raises `QualityGateError` (committing nothing)
    when a gate fails."""
    with tempfile.TemporaryDirectory(prefix=f"{day}-", dir=_spool_folder(settings)) as folder:
        quarantine = _Spool(Path(folder) / "quarantine.parquet", tables.QUARANTINE_EVENTS.schema)
        candidates = _Spool(Path(folder) / "silver.parquet", CANDIDATES)
        profile = _SilverProfile()
        with engine_for(settings, day) as engine:  # closed before the commits: its memory too
            for batch in engine.refine(run_id):
                quarantine.write(batch.quarantine)
                candidates.write(batch.silver)
                profile.add(batch.silver)
            duplicates, counts = engine.duplicates(), engine.counts
        quarantine.close()
        candidates.close()

        summary = event_suites.RefineSummary(
            bronze_rows=counts.bronze_rows,
            silver_rows=candidates.rows - duplicates.num_rows,
            quarantine_rows=quarantine.rows,
            duplicate_rows=counts.duplicate_rows,
            rows_by_reason=counts.reasons,
            silver_columns=profile.columns,
            silver_nulls=profile.nulls,
            silver_event_ids=counts.silver_event_ids,
            silver_unknown_event_types=profile.unknown_event_types,
        )
        families = rules.REASON_FAMILIES
        gate = validate(
            settings, event_suites.refine(families), summary.frame(families), f"{day}__{run_id}"
        )
        gate.raise_if_critical(str(tables.SILVER_EVENTS))

        metadata = {"run_id": run_id, "interval": day.isoformat(), "step": "refine_events"}
        for table, rows in (
            (tables.QUARANTINE_EVENTS, quarantine.batches()),
            (tables.SILVER_EVENTS, _without(duplicates, candidates.batches())),
        ):
            lake.write_arrow(
                settings, table, pa.RecordBatchReader.from_batches(table.schema, rows),
                mode="overwrite", predicate=bronze.day_predicate(day), metadata=metadata,
            )  # fmt: skip

    if counts.unknown_fields:
        log.warning(
            "schema drift in landing %s: unknown fields kept in bronze: %s",
            day,
            dict(counts.unknown_fields),
        )
    result = RefineResult(
        bronze_rows=counts.bronze_rows,
        silver_rows=summary.silver_rows,
        quarantine_rows=summary.quarantine_rows,
        duplicate_rows=counts.duplicate_rows,
        unknown_fields=dict(counts.unknown_fields),
    )
    log.info("refined landing %s with %s: %s", day, engine.name, result)
    return result
