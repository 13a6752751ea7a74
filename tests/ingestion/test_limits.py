"""No line or file can stop a day or blow up memory: landing files are streamed in batches, a
line past AUDOTICS_INGEST_MAX_LINE_BYTES is kept cut with its length and digest, and a file that
decompresses past AUDOTICS_INGEST_MAX_FILE_BYTES is refused before anything of its day is
written. On real Delta tables and a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import random
import re
import threading
import tracemalloc
from pathlib import Path

import psutil
import pyarrow.dataset as ds
import pytest

from audotics import lake
from audotics.lake import tables
from demo.world.generate import generate_world
from ingestion import landing
from ingestion.bronze import Landed, land_bronze
from ingestion.days import ingest
from ingestion.landing import (
    LandingFile,
    LandingFileError,
    LandingLimits,
    RecordCount,
    landing_days,
    read_batches,
)

MIB = 1 << 20
DAY_TABLES = (tables.BRONZE_EVENTS, tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS)


@pytest.fixture(scope="module")
def world(isolated_platform):
    settings = isolated_platform(
        "limits", world_users=60, world_artists=10, world_tracks=120, world_days=1,
        world_events_per_day=300, world_bad_record_rate=0.05,
    )  # fmt: skip
    generate_world(settings, progress=False)
    return settings


def landing_folder(settings, day: dt.date) -> Path:
    folder = Path(settings.landing_root) / "events" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bronze_of(settings, day: dt.date) -> list[dict]:
    rows = lake.read_arrow(settings, tables.BRONZE_EVENTS, filter=ds.field("landing_date") == day)
    return rows.sort_by([("source_file", "ascending"), ("line_number", "ascending")]).to_pylist()


# --- the line splitter, pure ----------------------------------------------------------------


def test_streamed_lines_are_the_lines_with_long_ones_cut_and_digested(tmp_path, monkeypatch):
    """Random files, chunk sizes, limits and batch sizes against a plain split."""
    generator = random.Random(13)
    path = tmp_path / "events-2026-11-01T00.jsonl.gz"
    file = LandingFile(path, dt.date(2026, 11, 1))
    for _ in range(300):
        count = generator.randint(0, 40)
        lines = [generator.randbytes(generator.choice([0, 1, 5, 30, 200])) for _ in range(count)]
        lines = [line.replace(b"\n", b" ") for line in lines]
        data = b"\n".join(lines) + generator.choice([b"", b"\n"])
        path.write_bytes(gzip.compress(data))
        monkeypatch.setattr(landing, "READ_CHUNK", generator.choice([1, 3, 64, MIB]))
        limits = LandingLimits(
            generator.choice([1, 4, 25, 1000]), 1 << 30, generator.choice([1, 3, 100])
        )
        expected = data.split(b"\n")
        if expected[-1] == b"":
            expected.pop()  # the newline that ends the file ends the last record

        seen: list[bytes] = []
        count = RecordCount()
        for batch in read_batches(file, limits, count):
            assert batch.first_line_number == len(seen) + 1
            assert 0 < len(batch.lines) <= limits.batch_lines
            for position, line in enumerate(batch.lines.to_pylist()):
                full = expected[len(seen)]
                assert line == full[: limits.max_line_bytes]
                if len(full) > limits.max_line_bytes:
                    assert batch.cut[position] == (len(full), hashlib.sha256(full).hexdigest())
                else:
                    assert position not in batch.cut
                seen.append(line)
        assert len(seen) == len(expected) == count.records


def test_a_0_byte_gz_is_a_readable_empty_file(tmp_path) -> None:
    path = tmp_path / "events-2026-11-01T00.jsonl.gz"
    path.write_bytes(b"")
    file = LandingFile(path, dt.date(2026, 11, 1))
    limits = LandingLimits(MIB, MIB, 10)
    count = RecordCount()
    assert list(read_batches(file, limits, count)) == []
    assert count.records == 0


def test_gzip_members_are_read_in_turn_padding_skipped_and_other_bytes_refused(tmp_path) -> None:
    path = tmp_path / "events-2026-11-01T00.jsonl.gz"
    file = LandingFile(path, dt.date(2026, 11, 1))

    def lines_of(data: bytes) -> list[bytes]:
        path.write_bytes(data)
        return [
            line
            for batch in read_batches(file, LandingLimits(MIB, MIB, 10))
            for line in batch.lines.to_pylist()
        ]

    # Members one after another (what `cat a.gz b.gz` makes) are one stream.
    assert lines_of(gzip.compress(b"a\nb\n") + gzip.compress(b"c\n")) == [b"a", b"b", b"c"]
    assert lines_of(gzip.compress(b"a\n") + bytes(512)) == [b"a"]  # zero padding
    for broken, reason in (
        (gzip.compress(b"a\n") + b"junk after the member", "not gzip data"),
        (gzip.compress(b"a\n")[:-6], "ended before the end-of-stream marker"),
        (b"plain text\n", "not gzip data"),
    ):
        with pytest.raises(LandingFileError, match=rf"{re.escape(str(path))}: .*{reason}"):
            lines_of(broken)


# --- on the lake ------------------------------------------------------------------------------


class PeakRss:
    """The largest RSS growth of this process while in the block, sampled every 5 ms."""

    def __enter__(self) -> PeakRss:
        self._process = psutil.Process()
        self.baseline = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_a_100_mb_line_is_kept_cut_in_bronze_with_its_length_and_digest(world) -> None:
    settings = world
    day = dt.date(2030, 1, 1)
    path = landing_folder(settings, day) / f"events-{day}T00.jsonl.gz"
    size, piece = 100 * MIB, b"a" * MIB
    digest = hashlib.sha256(b'{"x":"')
    with gzip.open(path, "wb", compresslevel=1) as out:  # written by pieces: never held whole
        out.write(b'{"before":1}\n{"x":"')
        for _ in range(size // MIB):
            out.write(piece)
            digest.update(piece)
        out.write(b'"}\n{"after":2}\n')
    digest.update(b'"}')
    line_bytes = size + len(b'{"x":"') + len(b'"}')

    tracemalloc.start()
    try:
        with PeakRss() as rss:
            assert land_bronze(settings, day, "long-line") == Landed(3, 3)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    first, long, last = bronze_of(settings, day)
    assert (first["raw"], first["raw_bytes"], first["raw_sha256"]) == (b'{"before":1}', 12, None)
    assert (last["raw"], last["raw_bytes"], last["line_number"]) == (b'{"after":2}', 11, 3)
    assert long["line_number"] == 2
    assert long["raw"] == (b'{"x":"' + piece)[: settings.ingest_max_line_bytes]
    assert long["raw_bytes"] == line_bytes
    assert long["raw_sha256"] == digest.hexdigest()
    # The line is never held whole: Python holds about a limit and a read chunk, and the
    # process grows by far less than the line (on main it grew by 1.1 GB).
    assert python_peak < 16 * MIB, f"Python peak {python_peak / MIB:.0f} MiB"
    assert rss.growth < 256 * MIB, f"RSS grew {rss.growth / MIB:.0f} MiB"


def test_a_cut_line_is_quarantined_as_line_too_long_and_the_day_reconciles(world) -> None:
    settings = world
    day = dt.date(2030, 1, 2)
    line = b'{"event_id":"' + b"x" * (2 * settings.ingest_max_line_bytes) + b'"}'
    path = landing_folder(settings, day) / f"events-{day}T00.jsonl.gz"
    path.write_bytes(gzip.compress(line + b"\n"))
    [run] = ingest(settings, [day], run_id="cut-line")
    assert (run["input_records"], run["bronze_rows"], run["quarantine_rows"]) == (1, 1, 1)
    [row] = lake.read_arrow(
        settings, tables.QUARANTINE_EVENTS, filter=ds.field("landing_date") == day
    ).to_pylist()
    assert "line_too_long" in row["reasons"]


def test_a_gzip_bomb_is_refused_naming_the_file_and_nothing_of_the_day_is_committed(world) -> None:
    limit = 8 * MIB
    settings = world.model_copy(update={"ingest_max_file_bytes": limit})
    day = landing_days(settings)[0]
    ingest(settings, [day], run_id="before-the-bomb")
    versions = {t: lake.version(settings, t) for t in DAY_TABLES}
    bronze_before = bronze_of(settings, day)

    bomb = landing_folder(settings, day) / f"events-{day}T23-bomb.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:  # 64 MiB of zeros in about 64 KiB
        for _ in range(64):
            out.write(bytes(MIB))
    assert bomb.stat().st_size < MIB
    try:
        with pytest.raises(LandingFileError) as refused:
            ingest(settings, [day], run_id="bomb")
        message = str(refused.value)
        assert bomb.name in message and f"AUDOTICS_INGEST_MAX_FILE_BYTES={limit:,}" in message
        # Bronze refuses it on its own too (a file grown since it was checked): no commit.
        with pytest.raises(LandingFileError, match=bomb.name):
            land_bronze(settings, day, "bomb-bronze")
        assert {t: lake.version(settings, t) for t in versions} == versions
        assert bronze_of(settings, day) == bronze_before
        # The run row says why: failed, naming the file.
        (row,) = lake.read_arrow(
            settings, tables.INGEST_RUNS, filter=ds.field("run_id") == "bomb"
        ).to_pylist()
        assert row["status"] == "failed" and bomb.name in row["status_reason"]
    finally:
        bomb.unlink()
