"""The landing zone: where apps drop hourly gzipped JSON-lines files of events.

`<landing_root>/events/date=YYYY-MM-DD/*.jsonl.gz`. The `date=` folder is the day the files
arrived; that day is the ingestion interval (daily), whatever the events' own timestamps say.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from audotics.errors import AudoticsError
from audotics.settings import Settings

DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
HOUR_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})")
READ_CHUNK = 1 << 20  # decompressed bytes read at a time: a gzip bomb never inflates further
COMPRESSED_CHUNK = 256 << 10  # compressed bytes read at a time
GZIP_WBITS = zlib.MAX_WBITS | 16  # zlib's format code for a gzip header and trailer
# A batch also ends here: batch_lines lines of up to max_line_bytes each could add up to GBs.
BATCH_BYTES = 64 << 20


class LandingFileError(AudoticsError):
    """A landing file cannot be read (not gzip, truncated) or decompresses past the file size
    limit: nothing of the day is committed, and the message names the file."""


@dataclass(frozen=True)
class LandingLimits:
    """How much of a landing file is read at once and at most (AUDOTICS_INGEST_* settings)."""

    max_line_bytes: int
    max_file_bytes: int
    batch_lines: int

    @classmethod
    def of(cls, settings: Settings) -> LandingLimits:
        return cls(
            settings.ingest_max_line_bytes,
            settings.ingest_max_file_bytes,
            settings.ingest_batch_lines,
        )


@dataclass
class LineBatch:
    """Consecutive lines of one file, each at most `max_line_bytes` long."""

    first_line_number: int  # 1-based, of lines[0]
    lines: list[bytes]
    # A line longer than the limit: its position in `lines` -> (its full length, SHA-256 hex of
    # all its bytes); `lines` holds only its first max_line_bytes.
    cut: dict[int, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LandingFile:
    path: Path
    landing_date: dt.date

    @property
    def name(self) -> str:
        """The path as recorded in bronze: relative to the landing root, stable across hosts."""
        return f"events/date={self.landing_date.isoformat()}/{self.path.name}"


def arrival_hour_end(file_name: str, landing_date: dt.date) -> dt.datetime:
    """End of the hour a file covers (from its name), else the end of its landing day.
    No event in the file can be later than this (plus clock skew)."""
    match = HOUR_IN_NAME.search(file_name.rsplit("/", 1)[-1])
    if match:
        start = dt.datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}:00:00+00:00")
        return start + dt.timedelta(hours=1)
    return dt.datetime.combine(landing_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def events_root(settings: Settings) -> Path:
    return Path(settings.landing_root) / "events"


def day_folder(settings: Settings, day: dt.date) -> Path:
    return events_root(settings) / f"date={day.isoformat()}"


def landing_days(settings: Settings) -> list[dt.date]:
    """Every day that has a landing folder, oldest first."""
    root = events_root(settings)
    if not root.is_dir():
        return []
    days = (DAY_FOLDER.match(p.name) for p in root.iterdir() if p.is_dir())
    return sorted(dt.date.fromisoformat(m.group(1)) for m in days if m)


def landing_files(settings: Settings, day: dt.date) -> list[LandingFile]:
    """The files of one landing day, in name order (hour order)."""
    folder = day_folder(settings, day)
    if not folder.is_dir():
        return []
    return [LandingFile(path, day) for path in sorted(folder.glob("*.jsonl.gz"))]


def _inflate(stream: BinaryIO) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream, every member, at most READ_CHUNK at a time.
    zlib directly: `gzip.open` costs twice the time in its Python-level buffering. Like it,
    zero bytes after the last member are padding; any other trailing bytes are an error."""
    inflater, pending, in_member = zlib.decompressobj(GZIP_WBITS), b"", False
    while True:
        if not pending:
            pending = stream.read(COMPRESSED_CHUNK)
            if not pending:
                break
        if not in_member and not pending.strip(b"\0"):
            pending = b""  # padding after a member
            continue
        in_member = True
        try:
            chunk = inflater.decompress(pending, READ_CHUNK)
        except zlib.error as exc:
            raise zlib.error(f"not gzip data, or corrupt ({exc})") from None
        pending = inflater.unconsumed_tail
        if inflater.eof:  # a member ended: another may follow
            pending, in_member = inflater.unused_data, False
            inflater = zlib.decompressobj(GZIP_WBITS)
        if chunk:
            yield chunk
    if in_member:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _decompressed(file: LandingFile, max_file_bytes: int) -> Iterator[bytes]:
    """The file's decompressed bytes, chunk by chunk; refused once past `max_file_bytes`."""
    size = 0
    try:
        with open(file.path, "rb") as stream:
            for chunk in _inflate(stream):
                size += len(chunk)
                if size > max_file_bytes:
                    raise LandingFileError(
                        f"landing file {file.path} decompresses to more than "
                        f"AUDOTICS_INGEST_MAX_FILE_BYTES={max_file_bytes:,} bytes: refused, "
                        "nothing of its day is committed"
                    )
                yield chunk
    except (OSError, EOFError, zlib.error) as exc:  # a 0-byte file is empty, not an error
        raise LandingFileError(f"cannot read landing file {file.path}: {exc}") from exc


class _Lines:
    """Cuts a stream of chunks into lines of at most `limit` bytes. A longer line keeps its
    first `limit` bytes; its length and SHA-256 are taken as its bytes stream by, so it is
    never held whole (at most `limit` bytes plus one chunk)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.done: list[bytes] = []
        self.cut: dict[int, tuple[int, str]] = {}
        self._head: list[bytes] = []  # the open line's kept pieces: `limit` bytes at most
        self._length = 0
        self._digest: hashlib._Hash | None = None  # once the open line passed the limit

    def feed(self, chunk: bytes) -> None:
        *complete, rest = chunk.split(b"\n")
        if complete:
            self._extend(complete[0])
            self._close()
            middle = complete[1:]
            if middle and max(map(len, middle)) > self.limit:
                for line in middle:
                    self._extend(line)
                    self._close()
            else:
                self.done.extend(middle)
        self._extend(rest)

    def finish(self) -> None:
        """End of file: an open line with bytes is a record; an empty one is the newline that
        ends the file (or an empty file), not a record."""
        if self._length:
            self._close()

    def take(self, count: int, first_line_number: int) -> LineBatch:
        batch = LineBatch(first_line_number, self.done[:count])
        del self.done[:count]
        if self.cut:
            batch.cut = {i: v for i, v in self.cut.items() if i < count}
            self.cut = {i - count: v for i, v in self.cut.items() if i >= count}
        return batch

    def _extend(self, piece: bytes) -> None:
        if not piece:
            return
        if self._digest is None and self._length + len(piece) > self.limit:
            self._digest = hashlib.sha256(b"".join(self._head))
        if self._digest is None:
            self._head.append(piece)
        else:
            self._digest.update(piece)
            if self._length < self.limit:
                self._head.append(piece[: self.limit - self._length])
        self._length += len(piece)

    def _close(self) -> None:
        if self._digest is not None:
            self.cut[len(self.done)] = (self._length, self._digest.hexdigest())
        self.done.append(b"".join(self._head))
        self._head, self._length, self._digest = [], 0, None


class RecordCount:
    """Records of a file, counted from its bytes as they stream by (newlines, and a last line
    without one): independent of the line splitting in `read_batches`, so the reconciliation
    compares two separate counts of the same pass."""

    def __init__(self) -> None:
        self.records, self._last = 0, b"\n"

    def add(self, chunk: bytes) -> None:
        self.records += chunk.count(b"\n")
        self._last = chunk[-1:]

    def finish(self) -> int:
        self.records += self._last != b"\n"
        self._last = b"\n"
        return self.records


def read_batches(
    file: LandingFile, limits: LandingLimits, count: RecordCount | None = None
) -> Iterator[LineBatch]:
    """Every line of the file as received (without the newline), in batches of
    `limits.batch_lines` lines (fewer once a batch holds BATCH_BYTES). An empty trailing line
    (the file ends with a newline) is not a record; a blank line inside the file is one.
    `count`, if given, counts the file's records from the same bytes."""
    lines = _Lines(limits.max_line_bytes)
    number, pending = 1, 0
    for chunk in _decompressed(file, limits.max_file_bytes):
        if count:
            count.add(chunk)
        lines.feed(chunk)
        pending += len(chunk)
        while len(lines.done) >= limits.batch_lines:
            batch = lines.take(limits.batch_lines, number)
            number += len(batch.lines)
            pending = sum(map(len, lines.done))
            yield batch
        if pending >= BATCH_BYTES and lines.done:
            batch = lines.take(len(lines.done), number)
            number, pending = number + len(batch.lines), 0
            yield batch
    lines.finish()
    if count:
        count.finish()
    while lines.done:
        batch = lines.take(limits.batch_lines, number)
        number += len(batch.lines)
        yield batch
