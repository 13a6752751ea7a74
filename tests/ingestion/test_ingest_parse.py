"""The event parser on hand-made lines: what is structural (quarantined here) and what is left
for the quality suite."""

from __future__ import annotations

import json

import pandas as pd

from ingestion.parse import parse_events
from ingestion.refine import first_occurrences

GOOD = {
    "event_id": "e1", "event_type": "play", "user_id": "u1", "track_id": "t1",
    "ts": "2026-11-01T10:00:00.500+02:00", "ms_played": 1000, "context": "search",
    "playlist_id": None, "model_version": None, "device": "ios", "country": "SE",
}  # fmt: skip


def line(**changes) -> bytes:
    record = {k: v for k, v in {**GOOD, **changes}.items() if v != "<drop>"}
    return json.dumps(record).encode()


def test_structural_problems_are_reported_per_line_and_good_lines_are_typed() -> None:
    lines = [
        line(),
        b"{cut sho",
        b"[1, 2]",
        line(ms_played="1000"),
        line(ms_played=True),
        line(user_id="<drop>", track_id=7),
        line(ts="yesterday"),
        line(event_id="e8", lyrics=True, mood="happy"),
        line(event_id="e9", ts="2026-11-01T08:00:00"),  # no offset: taken as UTC
    ]
    batch = parse_events(lines)

    assert batch.failures == {
        1: ["malformed_json"],
        2: ["not_a_json_object"],
        3: ["wrong_type:ms_played"],
        4: ["wrong_type:ms_played"],
        5: ["missing_field:user_id", "wrong_type:track_id"],
        6: ["unreadable_ts"],
    }
    assert batch.unknown_fields == {"lyrics": 1, "mood": 1}
    events = batch.events
    assert events["_row_id"].tolist() == [0, 7, 8]
    assert events["ts"].tolist() == [
        pd.Timestamp("2026-11-01T08:00:00.500Z"),  # +02:00 converted to UTC
        pd.Timestamp("2026-11-01T08:00:00.500Z"),
        pd.Timestamp("2026-11-01T08:00:00Z"),
    ]
    assert str(events["ts"].dtype) == "datetime64[us, UTC]"
    assert events["ms_played"].dtype == "int64"


def test_first_occurrences_keeps_the_first_copy_and_drops_ids_silver_already_has() -> None:
    ids = pd.Series(["a", "b", "a", "c", "b", "d"])
    assert first_occurrences(ids, known_ids={"c"}).tolist() == [
        True, True, False, False, False, True
    ]  # fmt: skip
