"""JSON lines of one fixed shape, assembled as bytes by numpy a chunk at a time.

Each line is a row of a byte matrix: constant pieces (keys, quotes, braces) and per-line values
(encoded, padded with NUL bytes to their column's width) are copied in column by column, and the
NULs are dropped at the end. The bytes are exactly what orjson.dumps writes for the same object
(the tests check), at half its cost per line here, and without the 4 KB buffer orjson keeps in
each result. The values are only ids, vocabulary words, ISO times and non-negative integers:
nothing that JSON escapes (`quoted` checks the words)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from demo.world.formats import MS_PER_DAY

_PLAIN = re.compile(r"[A-Za-z0-9 _.:&-]*")
_TWO_DIGITS = np.array([list(f"{i:02d}".encode()) for i in range(100)], dtype=np.uint8)
_THREE_DIGITS = np.array([list(f"{i:03d}".encode()) for i in range(1000)], dtype=np.uint8)

Piece = bytes | np.ndarray


def quoted(values: Sequence[str | None]) -> np.ndarray:
    """A lookup table of JSON values (`"text"`, or `null` for None) to index with codes."""
    for value in values:
        if value is not None and not _PLAIN.fullmatch(value):
            raise ValueError(f"{value!r} would need JSON escaping")
    return np.array([b"null" if v is None else f'"{v}"'.encode() for v in values])


def integers(values: np.ndarray) -> np.ndarray:
    """Non-negative integers as digits, one row each (NUL-padded on the left)."""
    values = np.asarray(values, dtype=np.int64)
    width = len(str(int(values.max()))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    digits[(values[:, None] < powers) & (powers > 1)] = 0  # no leading zeros
    return digits


def iso_times(epoch_ms: np.ndarray) -> np.ndarray:
    """Millisecond epoch times as `YYYY-MM-DDTHH:MM:SS.sssZ`, one row each."""
    days, in_day = np.divmod(np.asarray(epoch_ms, dtype=np.int64), MS_PER_DAY)
    unique_days, day_index = np.unique(days, return_inverse=True)
    dates = np.datetime_as_string(unique_days.astype("datetime64[D]")).astype("S10")
    seconds, millis = np.divmod(in_day, 1000)
    minutes, second = np.divmod(seconds, 60)
    hour, minute = np.divmod(minutes, 60)
    return _rows(
        [
            _matrix(dates)[day_index], b"T", _TWO_DIGITS[hour], b":", _TWO_DIGITS[minute], b":",
            _TWO_DIGITS[second], b".", _THREE_DIGITS[millis], b"Z",
        ],
        len(days),
    )  # fmt: skip


def assemble(pieces: Sequence[Piece], count: int) -> list[bytes]:
    """`count` lines, each the concatenation of `pieces`: constants, or per-line values (an
    array of byte strings, or a matrix with one NUL-padded row each). End with a newline."""
    if count == 0:
        return []
    flat = _rows(pieces, count).ravel()
    return flat[flat != 0].tobytes().splitlines(keepends=True)


def _rows(pieces: Sequence[Piece], count: int) -> np.ndarray:
    matrices = [
        np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (count, len(p)))
        if isinstance(p, bytes)
        else _matrix(p)
        for p in pieces
    ]
    rows = np.empty((count, sum(m.shape[1] for m in matrices)), dtype=np.uint8)
    column = 0
    for matrix in matrices:
        rows[:, column : column + matrix.shape[1]] = matrix
        column += matrix.shape[1]
    return rows


def _matrix(values: np.ndarray) -> np.ndarray:
    """Byte strings (dtype S) as a matrix with one row each; a matrix stays as it is."""
    if values.dtype.kind == "S":
        return np.ascontiguousarray(values).view(np.uint8).reshape(len(values), values.itemsize)
    return values
