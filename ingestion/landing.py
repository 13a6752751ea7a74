"""The landing zone: where apps drop hourly gzipped JSON-lines files of events.

`<landing_root>/events/date=YYYY-MM-DD/*.jsonl.gz`. The `date=` folder is the day the files
arrived; that day is the ingestion interval (daily), whatever the events' own timestamps say.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from isal import isal_zlib

from audotics.errors import AudoticsError
from audotics.settings import Settings

DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
HOUR_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})")
READ_CHUNK = 1 << 20  # decompressed bytes read at a time: a gzip bomb never inflates further
COMPRESSED_CHUNK = 256 << 10  # compressed bytes read at a time
GZIP_WBITS = isal_zlib.MAX_WBITS | 16  # zlib's format code for a gzip header and trailer
# A batch also ends here: batch_lines lines of up to max_line_bytes each could add up to GBs.
BATCH_BYTES = 64 << 20
NEWLINE = ord("\n")


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
    lines: pa.BinaryArray
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
    ISA-L's zlib interface directly: it inflates in about half zlib's time, and `gzip.open`
    costs twice more in its Python-level buffering. Like it, zero bytes after the last member
    are padding; any other trailing bytes are an error."""
    inflater, pending, in_member = isal_zlib.decompressobj(GZIP_WBITS), b"", False
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
        except isal_zlib.error as exc:
            raise isal_zlib.error(f"not gzip data, or corrupt ({exc})") from None
        pending = inflater.unconsumed_tail
        if inflater.eof:  # a member ended: another may follow
            pending, in_member = inflater.unused_data, False
            inflater = isal_zlib.decompressobj(GZIP_WBITS)
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
    except (OSError, EOFError, isal_zlib.error) as exc:  # a 0-byte file is empty, not an error
        raise LandingFileError(f"cannot read landing file {file.path}: {exc}") from exc


class _Lines:
    """Cuts a stream of chunks into lines of at most `limit` bytes.

    The lines wholly inside a chunk become one Arrow binary array without a Python object per
    line: numpy finds the newlines, and the chunk without them is the array's data. A line
    that spans chunks is gathered piece by piece. A line past the limit keeps its first
    `limit` bytes; its length and SHA-256 are taken as its bytes stream by, so it is never held
    whole (at most `limit` bytes plus one chunk)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.done: deque[pa.BinaryArray] = deque()
        self.count = 0  # lines in `done`
        self.taken = 0  # lines handed out in batches
        self.cut: dict[int, tuple[int, str]] = {}  # by position in `done`, as in LineBatch
        self._head: list[bytes] = []  # the open line's kept pieces: `limit` bytes at most
        self._length = 0
        self._digest: hashlib._Hash | None = None  # once the open line passed the limit

    @property
    def nbytes(self) -> int:
        """Bytes of the lines in `done` (a few arrays: one or two per chunk fed)."""
        return sum(piece.nbytes for piece in self.done)

    def feed(self, chunk: bytes) -> None:
        ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == NEWLINE)
        if not len(ends):
            self._extend(chunk)
            return
        self._extend(chunk[: ends[0]])
        self._close()
        if len(ends) > 1:
            self._whole_lines(chunk, ends)
        self._extend(chunk[ends[-1] + 1 :])

    def finish(self) -> None:
        """End of file: an open line with bytes is a record; an empty one is the newline that
        ends the file (or an empty file), not a record."""
        if self._length:
            self._close()

    def take(self, count: int) -> LineBatch:
        """The next `count` lines of `done` (fewer if it holds fewer), numbered in the file."""
        pieces, taken = [], 0
        while taken < count and self.done:
            piece = self.done.popleft()
            if len(piece) > count - taken:
                piece, rest = piece.slice(0, count - taken), piece.slice(count - taken)
                self.done.appendleft(rest)
            pieces.append(piece)
            taken += len(piece)
        lines = pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)
        batch = LineBatch(self.taken + 1, lines)
        self.count -= taken
        self.taken += taken
        if self.cut:
            batch.cut = {i: v for i, v in self.cut.items() if i < taken}
            self.cut = {i - taken: v for i, v in self.cut.items() if i >= taken}
        return batch

    def _whole_lines(self, chunk: bytes, ends: np.ndarray) -> None:
        """The lines between the chunk's first and last newline, as one array. Removing the
        newlines before line k shifts its start by k: the offsets are the ends minus that."""
        first, last = int(ends[0]), int(ends[-1])
        offsets = ends - first - np.arange(len(ends))
        if np.diff(offsets).max() > self.limit:  # rare: cut them one by one
            for start, end in zip(ends[:-1] + 1, ends[1:], strict=True):
                self._extend(chunk[start:end])
                self._close()
            return
        data = chunk[first + 1 : last].replace(b"\n", b"")
        lines = pa.BinaryArray.from_buffers(
            pa.binary(), len(ends) - 1, [None, pa.py_buffer(offsets.astype(np.int32)),
                                         pa.py_buffer(data)]
        )  # fmt: skip
        self.done.append(lines)
        self.count += len(lines)

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
            self.cut[self.count] = (self._length, self._digest.hexdigest())
        self.done.append(pa.array([b"".join(self._head)], pa.binary()))
        self.count += 1
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
    for chunk in _decompressed(file, limits.max_file_bytes):
        if count:
            count.add(chunk)
        lines.feed(chunk)
        while lines.count >= limits.batch_lines:
            yield lines.take(limits.batch_lines)
        if lines.count and lines.nbytes >= BATCH_BYTES:
            yield lines.take(lines.count)
    lines.finish()
    if count:
        count.finish()
    while lines.count:
        yield lines.take(limits.batch_lines)
