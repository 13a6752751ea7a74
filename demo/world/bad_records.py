"""Realistically bad lines, as a buggy app or a flaky network produces them: each is a good
event of the same file spoiled in one way (or an earlier event sent again), so everything else
about it looks normal."""

from __future__ import annotations

from collections import Counter, deque

import numpy as np
import orjson

from demo.world.formats import MS_PER_DAY, iso_utc, uuid_strings

BAD_KINDS: tuple[str, ...] = (
    "malformed_json",  # the line is cut short
    "missing_field",  # one of MISSABLE_FIELDS is absent
    "unknown_user",  # a well-formed user_id not in app.users
    "unknown_track",  # a well-formed track_id not in app.tracks
    "duplicate_event_id",  # an earlier good line resent as it was, maybe in a later file
    "ts_future",  # at least 30 days after the file's hour
    "ts_before_launch",  # before service_launch_date (often the 1970 epoch: a reset clock)
    "wrong_type",  # ms_played as text, ts as epoch number or user_id as number
    "unknown_event_type",  # not play/skip/like/playlist_add
)
MISSABLE_FIELDS = ("event_id", "event_type", "user_id", "track_id", "ts", "ms_played")
UNKNOWN_EVENT_TYPES = ("pause", "seek", "share", "repeat")
RESENDABLE_LINES = 2_048  # earlier good lines kept for resends in later files
RESENT_FROM_EARLIER_FILES = 0.5
NEWLINE = orjson.OPT_APPEND_NEWLINE


class BadRecordMaker:
    """Makes bad lines; remembers a sample of earlier good lines to resend them later."""

    def __init__(self, launch_ms: int) -> None:
        self.launch_ms = launch_ms
        self.earlier_lines: deque[bytes] = deque(maxlen=RESENDABLE_LINES)

    def make(
        self,
        rng: np.random.Generator,
        count: int,
        templates: list[bytes],
        written: list[bytes],
        hour_end_ms: int,
    ) -> tuple[list[bytes], Counter[str]]:
        """`count` bad lines spoiled from `templates` (good lines of this file's hour) or
        resending `written` (this file's good lines) and earlier lines. Returns the lines and
        their count per kind."""
        kinds = np.array(BAD_KINDS)[rng.integers(0, len(BAD_KINDS), count)].tolist()
        ids = uuid_strings(rng, 2 * count).tolist()  # per line: its event_id, a stranger's id
        lines: list[bytes] = []
        made: Counter[str] = Counter()
        for kind, event_id, stranger_id in zip(kinds, ids[0::2], ids[1::2], strict=True):
            if kind == "duplicate_event_id":
                resend = self._resend(rng, written)
                if resend is not None:
                    lines.append(resend)
                    made[kind] += 1
                    continue
                kind = "malformed_json"  # nothing was sent before: a cut line instead
            event = orjson.loads(templates[rng.integers(0, len(templates))])
            event["event_id"] = event_id
            lines.append(self._spoil(rng, kind, event, stranger_id, hour_end_ms))
            made[kind] += 1
        return lines, made

    def remember(self, rng: np.random.Generator, written: list[bytes], sample: int = 64) -> None:
        """Keep a few of this chunk's good lines for resends from later files."""
        if written:
            picks = rng.choice(len(written), size=min(sample, len(written)), replace=False)
            self.earlier_lines.extend(written[i] for i in np.sort(picks))

    def _resend(self, rng: np.random.Generator, written: list[bytes]) -> bytes | None:
        earlier = bool(self.earlier_lines) and rng.random() < RESENT_FROM_EARLIER_FILES
        if earlier or not written:
            if not self.earlier_lines:
                return None
            return self.earlier_lines[rng.integers(0, len(self.earlier_lines))]
        return written[rng.integers(0, len(written))]

    def _spoil(
        self, rng: np.random.Generator, kind: str, event: dict, stranger_id: str, hour_end_ms: int
    ) -> bytes:
        if kind == "malformed_json":
            line = orjson.dumps(event)
            return line[: rng.integers(len(line) // 4, len(line) - 1)] + b"\n"
        if kind == "missing_field":
            del event[MISSABLE_FIELDS[rng.integers(0, len(MISSABLE_FIELDS))]]
        elif kind == "unknown_user":
            event["user_id"] = stranger_id
        elif kind == "unknown_track":
            event["track_id"] = stranger_id
        elif kind == "ts_future":
            ahead = rng.integers(30 * MS_PER_DAY, 5 * 365 * MS_PER_DAY)
            event["ts"] = iso_utc(np.array([hour_end_ms + ahead]))[0]
        elif kind == "ts_before_launch":
            behind = rng.integers(MS_PER_DAY, 10 * 365 * MS_PER_DAY)
            reset_clock = rng.random() < 0.3 and self.launch_ms > 0
            event["ts"] = iso_utc(np.array([0 if reset_clock else self.launch_ms - behind]))[0]
        elif kind == "wrong_type":
            _wrong_type(rng, event)
        elif kind == "unknown_event_type":
            event["event_type"] = UNKNOWN_EVENT_TYPES[rng.integers(0, len(UNKNOWN_EVENT_TYPES))]
        return orjson.dumps(event, option=NEWLINE)


def _wrong_type(rng: np.random.Generator, event: dict) -> None:
    variant = rng.integers(0, 3)
    if variant == 0:
        event["ms_played"] = ("abc", "n/a", "unknown")[rng.integers(0, 3)]
    elif variant == 1:  # epoch milliseconds instead of an ISO string
        event["ts"] = int(np.datetime64(event["ts"].rstrip("Z"), "ms").astype(np.int64))
    else:
        event["user_id"] = int(rng.integers(1, 10_000_000))
