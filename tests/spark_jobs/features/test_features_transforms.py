"""Feature transforms on a small silver world with hand-checked values (real local Spark).

Snapshot D = 2026-11-10: the snapshot sees ts < 2026-11-11 00:00 UTC. Windows: 7d = 11-04..11-10,
28d = 10-14..11-10, 90d = 08-13..11-10; the trend's previous 7 days = 10-28..11-03.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pyarrow as pa
import pytest

from audotics.settings import Settings
from spark_jobs.features.interactions import ConfidenceWeights, interactions
from spark_jobs.features.track_features import track_features
from spark_jobs.features.user_features import user_features

D = dt.date(2026, 11, 10)
# The documented defaults: play 1, completion 1, like 4, playlist add 3, skip 1.
WEIGHTS = ConfidenceWeights.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
UTC = dt.UTC
_ids = itertools.count()

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event_date", pa.date32()),
        pa.field("ms_played", pa.int64()),
        pa.field("context", pa.string()),
        pa.field("device", pa.string()),
        pa.field("country", pa.string()),
        pa.field("playlist_id", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
        pa.field("run_id", pa.string()),
    ]
)
SCD2 = [
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("updated_at", pa.timestamp("us", tz="UTC")),
    pa.field("valid_from", pa.timestamp("us", tz="UTC")),
    pa.field("valid_to", pa.timestamp("us", tz="UTC")),
    pa.field("is_current", pa.bool_()),
]
USERS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("username", pa.string()),
        pa.field("email", pa.string()),
        pa.field("country", pa.string()),
        pa.field("birth_year", pa.int32()),
        pa.field("subscription", pa.string()),
        *SCD2,
    ]
)
AUDIO = ("danceability", "energy", "valence", "tempo", "acousticness", "instrumentalness")
TRACKS_SCHEMA = pa.schema(
    [
        pa.field("track_id", pa.string()),
        pa.field("title", pa.string()),
        pa.field("artist_id", pa.string()),
        pa.field("album", pa.string()),
        pa.field("genre", pa.string()),
        pa.field("duration_ms", pa.int32()),
        pa.field("release_date", pa.date32()),
        *(pa.field(name, pa.float64()) for name in (*AUDIO, "loudness")),
        *SCD2,
    ]
)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(kind: str, user: str, track: str, ts: str, ms: int = 0) -> dict:
    when = at(ts)
    return {
        "event_id": f"e{next(_ids)}",
        "event_type": kind,
        "user_id": user,
        "track_id": track,
        "ts": when,
        "event_date": when.date(),
        "ms_played": ms,
        "context": "search",
        "device": "web",
        "country": "SE",
        "playlist_id": "p1" if kind == "playlist_add" else None,
        "model_version": None,
        "ingested_at": when,
        "run_id": "test",
    }


def user(user_id: str, country: str, created: str, valid_from: str, valid_to: str | None) -> dict:
    return {
        "user_id": user_id,
        "username": user_id,
        "email": f"{user_id}@example.com",
        "country": country,
        "birth_year": 1990,
        "subscription": "free",
        "created_at": at(created),
        "updated_at": at(valid_from),
        "valid_from": at(valid_from),
        "valid_to": at(valid_to) if valid_to else None,
        "is_current": valid_to is None,
    }


def track(
    track_id: str, artist: str, genre: str, duration_ms: int, valid_from: str = "2026-01-01"
) -> dict:
    return {
        "track_id": track_id,
        "title": track_id,
        "artist_id": artist,
        "album": "album",
        "genre": genre,
        "duration_ms": duration_ms,
        "release_date": dt.date(2026, 1, 1),
        **{name: 0.5 for name in AUDIO},
        "loudness": -7.0,
        "created_at": at("2026-01-01"),
        "updated_at": at(valid_from),
        "valid_from": at(valid_from),
        "valid_to": None,
        "is_current": True,
    }


def silver_events(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


BASE_EVENTS = [
    # u1
    event("play", "u1", "t1", "2026-11-10T23:59:59.999999", 250_000),  # last µs of D, > duration
    event("play", "u1", "t1", "2026-11-08T10:00:00", 100_000),
    event("skip", "u1", "t2", "2026-11-05T10:30:00", 5_000),
    event("play", "u1", "t3", "2026-11-01T10:00:00", 300_000),
    event("like", "u1", "t1", "2026-10-20T08:00:00"),
    event("play", "u1", "t2", "2026-09-01T10:00:00", 50_000),
    event("play", "u1", "t1", "2026-11-11T00:00:00", 200_000),  # at the cutoff: after D
    event("play", "u1", "t1", "2026-08-12T23:00:00", 200_000),  # before the 90-day window
    # u2: no plays
    event("like", "u2", "t3", "2026-11-07T12:00:00"),
    event("skip", "u2", "t1", "2026-11-09T09:00:00", 1_000),
    event("playlist_add", "u2", "t2", "2026-11-08T09:00:00"),
]
USERS = [
    user("u1", "NO", "2026-10-01", "2026-10-01", "2026-11-05"),
    user("u1", "SE", "2026-10-01", "2026-11-05", "2026-11-11"),  # ends exactly at the cutoff
    user("u1", "DK", "2026-10-01", "2026-11-11", None),  # a change after D
    user("u2", "US", "2026-11-05", "2026-11-05", None),
    user("u3", "US", "2026-11-12", "2026-11-12", None),  # signed up after D
]
TRACKS = [
    track("t1", "a1", "rock", 200_000),
    track("t2", "a1", "pop", 100_000),
    track("t3", "a2", "jazz", 300_000),
    track("t4", "a2", "jazz", 100_000, valid_from="2026-11-12"),  # released after D
]


@pytest.fixture(scope="module")
def silver(spark):
    return {
        "events": spark.createDataFrame(silver_events(BASE_EVENTS)),
        "users": spark.createDataFrame(pa.Table.from_pylist(USERS, schema=USERS_SCHEMA)),
        "tracks": spark.createDataFrame(pa.Table.from_pylist(TRACKS, schema=TRACKS_SCHEMA)),
    }


def snapshot_outputs(events, users, tracks, as_of: dt.date = D) -> dict[str, list]:
    """The three transforms' rows as of `as_of` (default weights, 90-day lookback)."""
    return {
        "user_features": user_features(events, users, tracks, as_of).collect(),
        "track_features": track_features(events, tracks, as_of).collect(),
        "interactions": interactions(
            events, tracks, as_of, weights=WEIGHTS, lookback_days=90
        ).collect(),
    }


@pytest.fixture(scope="module")
def outputs(silver) -> dict[str, list]:
    return snapshot_outputs(silver["events"], silver["users"], silver["tracks"])


def rows_by_key(rows, key: str) -> dict[str, dict]:
    return {row[key]: row.asDict(recursive=True) for row in rows}


def test_user_features_hand_checked(outputs):
    rows = rows_by_key(outputs["user_features"], "user_id")

    assert sorted(rows) == ["u1", "u2"]  # u3 signed up after D
    u1 = rows["u1"]
    assert u1["as_of_date"] == D
    assert (u1["plays_7d"], u1["plays_28d"], u1["plays_90d"]) == (2, 3, 4)
    assert (u1["skips_7d"], u1["skips_28d"], u1["skips_90d"]) == (1, 1, 1)
    assert (u1["likes_7d"], u1["likes_28d"], u1["likes_90d"]) == (0, 1, 1)
    assert (u1["listening_ms_7d"], u1["listening_ms_28d"], u1["listening_ms_90d"]) == (
        355_000,
        655_000,
        705_000,
    )
    assert u1["skip_rate_7d"] == pytest.approx(1 / 3)
    assert u1["skip_rate_28d"] == pytest.approx(1 / 4)
    assert u1["skip_rate_90d"] == pytest.approx(1 / 5)
    assert (u1["distinct_artists_90d"], u1["distinct_genres_90d"]) == (2, 3)
    assert u1["genre_affinity_90d"] == {"jazz": 0.25, "pop": 0.25, "rock": 0.5}
    assert (u1["top_genre_90d"], u1["top_genre_share_90d"]) == ("rock", 0.5)
    expected_hours = [0.0] * 24
    expected_hours[10], expected_hours[23] = 0.75, 0.25
    assert u1["hour_profile_90d"] == expected_hours
    assert u1["peak_hour_90d"] == 10
    assert u1["days_since_last_event"] == 0
    assert u1["country"] == "SE"  # the catalog as of D, not the change at the cutoff
    assert u1["tenure_days"] == 40

    u2 = rows["u2"]
    assert (u2["plays_7d"], u2["skips_7d"], u2["likes_7d"], u2["listening_ms_90d"]) == (
        0,
        1,
        1,
        1000,
    )
    assert u2["skip_rate_7d"] == 1.0
    assert (u2["distinct_artists_90d"], u2["distinct_genres_90d"]) == (0, 0)
    for profile in ("genre_affinity_90d", "top_genre_90d", "hour_profile_90d", "peak_hour_90d"):
        assert u2[profile] is None
    assert (u2["days_since_last_event"], u2["country"], u2["tenure_days"]) == (1, "US", 5)


def test_track_features_hand_checked(outputs):
    rows = rows_by_key(outputs["track_features"], "track_id")

    assert sorted(rows) == ["t1", "t2", "t3"]  # t4 entered the catalog after D
    t1, t2, t3 = rows["t1"], rows["t2"], rows["t3"]
    assert (t1["plays_7d"], t1["plays_28d"], t1["plays_90d"], t1["plays_prev_7d"]) == (2, 2, 2, 0)
    assert t1["play_trend_7d"] == 3.0
    assert t1["skip_rate_7d"] == pytest.approx(1 / 3)
    assert (t1["like_rate_7d"], t1["like_rate_28d"]) == (0.0, 0.5)
    assert (t1["unique_listeners_7d"], t1["unique_listeners_90d"]) == (1, 1)
    assert (t1["artist_id"], t1["genre"], t1["duration_ms"]) == ("a1", "rock", 200_000)
    assert (t1["artist_plays_7d"], t1["artist_plays_28d"], t1["artist_plays_90d"]) == (2, 2, 3)
    assert t1["days_since_release"] == (D - dt.date(2026, 1, 1)).days == 313
    assert (t1["danceability"], t1["loudness"]) == (0.5, -7.0)

    assert (t2["plays_7d"], t2["plays_90d"]) == (0, 1)
    assert (t2["skip_rate_7d"], t2["skip_rate_90d"]) == (1.0, 0.5)
    assert (t2["like_rate_7d"], t2["like_rate_90d"]) == (None, 0.0)
    assert (t2["unique_listeners_7d"], t2["unique_listeners_90d"]) == (0, 1)

    assert (t3["plays_7d"], t3["plays_28d"], t3["plays_prev_7d"]) == (0, 1, 1)
    assert t3["play_trend_7d"] == 0.5
    assert (t3["like_rate_7d"], t3["like_rate_28d"]) == (None, 1.0)
    assert (t3["artist_plays_7d"], t3["artist_plays_28d"]) == (0, 1)


def test_interactions_confidence_formula(silver, outputs):
    rows = {(r["user_id"], r["track_id"]): r.asDict() for r in outputs["interactions"]}

    assert ConfidenceWeights(play=1, completion=1, like=4, playlist_add=3, skip=1) == WEIGHTS
    # u2 x t1 (one skip: -1) is net negative and left out.
    assert sorted(rows) == [("u1", "t1"), ("u1", "t2"), ("u1", "t3"), ("u2", "t2"), ("u2", "t3")]
    u1_t1 = rows[("u1", "t1")]
    # 2 plays + completion (1.0 capped + 0.5) + 4 x 1 like
    assert u1_t1["confidence"] == 7.5
    assert (u1_t1["plays"], u1_t1["skips"], u1_t1["likes"], u1_t1["playlist_adds"]) == (2, 0, 1, 0)
    # Spark hands timestamps to Python as naive local times.
    assert u1_t1["last_ts"].astimezone(UTC) == at("2026-11-10T23:59:59.999999")
    assert rows[("u1", "t2")]["confidence"] == 1 + 0.5 - 1  # a half play, a skip
    assert rows[("u1", "t3")]["confidence"] == 2.0
    assert rows[("u2", "t2")]["confidence"] == 3.0  # a playlist add
    assert rows[("u2", "t3")]["confidence"] == 4.0  # a like
    assert {r["as_of_date"] for r in rows.values()} == {D}
    result = interactions(silver["events"], silver["tracks"], D, weights=WEIGHTS, lookback_days=90)
    assert result.columns == [
        "user_id", "track_id", "as_of_date", "confidence", "plays", "skips", "likes",
        "playlist_adds", "last_ts",
    ]  # fmt: skip


def test_interactions_weights_and_lookback(silver):
    likes_only = ConfidenceWeights(play=0, completion=0, like=1, playlist_add=0, skip=0)
    result = interactions(
        silver["events"], silver["tracks"], D, weights=likes_only, lookback_days=7
    )
    # Only u2's like of t3 on 11-07 is within 7 days; u1's like of t1 (10-20) is older.
    assert [(r["user_id"], r["track_id"], r["confidence"]) for r in result.collect()] == [
        ("u2", "t3", 1.0)
    ]


def test_no_event_after_the_snapshot_date_contributes(spark, silver, outputs):
    """Events and catalog changes at or after D+1 00:00 leave every output unchanged."""
    later = [
        event("play", "u1", "t1", "2026-11-11T00:00:00", 200_000),
        event("like", "u2", "t2", "2026-11-11T00:00:00.000001"),
        event("skip", "u1", "t3", "2026-11-15T08:00:00", 1_000),
        event("playlist_add", "u3", "t4", "2026-11-20T08:00:00"),
        event("play", "u2", "t1", "2026-12-24T20:00:00", 200_000),
    ]
    with_later = spark.createDataFrame(silver_events(BASE_EVENTS + later))
    later_catalog = spark.createDataFrame(
        pa.Table.from_pylist(
            [*TRACKS, track("t5", "a3", "metal", 100_000, valid_from="2026-11-11")],
            schema=TRACKS_SCHEMA,
        )
    )

    after = snapshot_outputs(with_later, silver["users"], later_catalog)

    for table, rows in outputs.items():
        assert sorted(map(repr, after[table])) == sorted(map(repr, rows)), table
    # ...while the same later events do count for a later snapshot.
    next_day = interactions(
        with_later, later_catalog, D + dt.timedelta(days=1), weights=WEIGHTS,
        lookback_days=90,
    )  # fmt: skip
    assert next_day.where("user_id = 'u2' and track_id = 't2'").first()["likes"] == 1
