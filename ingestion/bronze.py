"""Bronze: every line of a landing day as received (cut to AUDOTICS_INGEST_MAX_LINE_BYTES, with
its full length and digest, if longer), with where it came from."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from audotics import lake
from audotics.lake import tables
from audotics.lake.delta import LakeError
from audotics.settings import Settings
from ingestion.landing import (
    LandingFile,
    LandingFileError,
    LandingLimits,
    LineBatch,
    RecordCount,
    landing_files,
    read_batches,
)

log = logging.getLogger(__name__)
PREFETCH = 2  # record batches read ahead of the lake writer (each at most BATCH_BYTES of lines)


def day_predicate(day: dt.date) -> str:
    return f"landing_date = '{day.isoformat()}'"


def _record_batch(
    file: LandingFile, batch: LineBatch, run_id: str, now: dt.datetime
) -> pa.RecordBatch:
    count = len(batch.lines)
    raw_bytes = pc.binary_length(batch.lines).cast(pa.int64())
    raw_sha256 = pa.nulls(count, pa.string())
    if batch.cut:
        lengths, digests = raw_bytes.to_pylist(), [None] * count
        for position, (length, digest) in batch.cut.items():
            lengths[position], digests[position] = length, digest
        raw_bytes, raw_sha256 = pa.array(lengths, pa.int64()), pa.array(digests, pa.string())
    first = batch.first_line_number
    columns = {
        "source_file": pa.repeat(pa.scalar(file.name, pa.string()), count),
        "line_number": pa.array(np.arange(first, first + count, dtype=np.int64)),
        "raw": batch.lines,
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), count),
        "ingested_at": pa.repeat(pa.scalar(now, tables.UTC_TIMESTAMP), count),
        "landing_date": pa.repeat(pa.scalar(file.landing_date, pa.date32()), count),
        "raw_bytes": raw_bytes,
        "raw_sha256": raw_sha256,
    }
    schema = tables.BRONZE_EVENTS.schema
    return pa.record_batch([columns[name] for name in schema.names], schema=schema)


class _DayStream:
    """The day's landing lines as record batches, one landing batch at a time, and the records
    counted from the same bytes. A file refused while streaming is kept, so the caller raises
    its clear error rather than the writer's."""

    def __init__(
        self,
        files: list[LandingFile],
        limits: LandingLimits,
        run_id: str,
        on_file: Callable[[LandingFile], None] | None,
    ) -> None:
        self.files, self.limits, self.run_id, self.on_file = files, limits, run_id, on_file
        self.rows = 0
        self.count = RecordCount()
        self.refused: LandingFileError | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        now = dt.datetime.now(dt.UTC)
        try:
            for file in self.files:
                for batch in read_batches(file, self.limits, self.count):
                    self.rows += len(batch.lines)
                    yield _record_batch(file, batch, self.run_id, now)
                if self.on_file:
                    self.on_file(file)
        except LandingFileError as exc:
            self.refused = exc
            raise


_END = object()


def _read_ahead(batches: Iterator[pa.RecordBatch], depth: int) -> Iterator[pa.RecordBatch]:
    """`batches`, produced by a thread up to `depth` ahead: decompressing and cutting the next
    lines overlaps the writer encoding the last ones (both release the GIL for most of it). An
    error of the producer is raised here; a consumer that stops early stops the producer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put `item` once there is room; False if the consumer stopped meanwhile."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)

    producer = threading.Thread(target=produce, name="bronze-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


@dataclass(frozen=True)
class Landed:
    input_records: int  # counted from the landing bytes (`landing.RecordCount`)
    bronze_rows: int  # lines written


def land_bronze(
    settings: Settings,
    day: dt.date,
    run_id: str,
    on_file: Callable[[LandingFile], None] | None = None,
) -> Landed:
    """Replace the day's bronze partition with its landing files in one commit, streamed batch
    by batch (memory bounded by the batch, not the day), in one pass over the files
    (`on_file` is told of each file read).

    A file that cannot be read or is past the size limit raises `LandingFileError` naming it,
    and the write is aborted before its commit: bronze keeps the day's previous rows."""
    files = landing_files(settings, day)
    stream = _DayStream(files, LandingLimits.of(settings), run_id, on_file)
    reader = pa.RecordBatchReader.from_batches(
        tables.BRONZE_EVENTS.schema, _read_ahead(stream.batches(), PREFETCH)
    )
    try:
        lake.write_arrow(
            settings, tables.BRONZE_EVENTS, reader,
            mode="overwrite", predicate=day_predicate(day),
            schema_mode="merge",  # a bronze table from before raw_bytes/raw_sha256 gains them
            metadata={"run_id": run_id, "interval": day.isoformat(), "step": "land_bronze"},
        )  # fmt: skip
    except LakeError:
        if stream.refused:
            raise stream.refused from None
        raise
    log.info("%s %s: %d lines from %d files", tables.BRONZE_EVENTS, day, stream.rows, len(files))
    return Landed(input_records=stream.count.records, bronze_rows=stream.rows)


def read_day(settings: Settings, day: dt.date) -> pa.Table:
    """The day's bronze rows in landing order (file, line)."""
    rows = lake.read_arrow(settings, tables.BRONZE_EVENTS, filter=ds.field("landing_date") == day)
    return rows.sort_by([("source_file", "ascending"), ("line_number", "ascending")])
