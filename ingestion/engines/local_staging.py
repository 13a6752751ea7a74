"""Staging on the local disk for an in-process engine: record batches spooled to one Parquet
file per staged folder and read back a row group (one batch) at a time, the candidates
profiled for the gates as they pass, and the silver rows streamed into the lake at commit.
Memory stays the batch's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from audotics.vocabulary import EVENT_TYPES
from ingestion import bronze
from ingestion.engines import LINES, STAGED, DayCounts


class Spool:
    """One staged folder (`STAGED[name]`) as one Parquet file. Mostly unique text: no
    dictionary."""

    def __init__(self, staging: Path, name: str) -> None:
        self.schema, self.rows = STAGED[name], 0
        (staging / name).mkdir()
        self.path = staging / name / "part-0.parquet"
        self._writer = pq.ParquetWriter(
            self.path, self.schema, compression="lz4", use_dictionary=False
        )

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows:
            self._writer.write(batch)
            self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        file = pq.ParquetFile(self.path)
        for group in range(file.num_row_groups):
            yield from file.read_row_group(group).to_batches()


def profile_candidates(counts: DayCounts, batch: pa.RecordBatch) -> None:
    """Add what the gates check of silver to `counts`, for one batch of candidates."""
    if not batch.num_rows:
        return
    counts.candidate_rows += batch.num_rows
    counts.silver_columns = [name for name in batch.schema.names if name not in LINES.names]
    for name in counts.silver_columns:
        counts.silver_nulls[name] += batch.column(name).null_count
    known = pc.is_in(batch.column("event_type"), value_set=pa.array(EVENT_TYPES, pa.string()))
    counts.silver_unknown_event_types += batch.num_rows - pc.sum(known).as_py()


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


def commit_spools(
    settings: Settings, day: dt.date, spools: dict[str, Spool], metadata: dict[str, str]
) -> None:
    """Replace the day's quarantine and silver rows by the spooled ones (`STAGED` names),
    streamed."""
    dropped = pq.read_table(spools["duplicates"].path)
    for table, rows in (
        (tables.QUARANTINE_EVENTS, spools["quarantine"].batches()),
        (tables.SILVER_EVENTS, _without(dropped, spools["candidates"].batches())),
    ):
        lake.write_arrow(
            settings, table, pa.RecordBatchReader.from_batches(table.schema, rows),
            mode="overwrite", predicate=bronze.day_predicate(day), metadata=metadata,
        )  # fmt: skip
