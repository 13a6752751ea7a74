"""How values are spelled in the database and the event files: UUIDs drawn from a seeded RNG (so
a world is reproducible, unlike uuid4) and UTC timestamps, both vectorised."""

from __future__ import annotations

import datetime as dt

import numpy as np

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Where the 32 hex digits go in the 36-character form 8-4-4-4-12.
_DIGIT_POSITIONS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
MS_PER_SECOND = 1_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


def uuid_strings(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` random version-4 UUIDs as an object array of str (cheap to index and list)."""
    return uuid_bytes(rng, count).view("S36").ravel().astype("U36").astype(object)


def uuid_bytes(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` random version-4 UUIDs as text: a (count, 36) matrix of ASCII bytes."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    digits = np.empty((count, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX_DIGITS[raw >> 4]
    digits[:, 1::2] = _HEX_DIGITS[raw & 0x0F]
    text[:, _DIGIT_POSITIONS] = digits
    return text


def iso_utc(epoch_ms: np.ndarray) -> np.ndarray:
    """Millisecond epoch times as ISO-8601 UTC strings, e.g. `2026-11-01T13:45:12.345Z`."""
    return np.datetime_as_string(
        np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]"), unit="ms", timezone="UTC"
    )


def epoch_ms(day: dt.date) -> int:
    """Midnight UTC of `day` in epoch milliseconds."""
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * MS_PER_SECOND)
