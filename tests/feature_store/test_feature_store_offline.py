"""Point-in-time joins of the offline store (real local Spark).

Rule: the snapshot as of D is available from D+1 00:00 UTC and fresh for the view's ttl
(2 days for user_features): a row at t gets the newest D with D+1 00:00 <= t < D+1 00:00 + ttl.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from feature_store.definitions import USER_FEATURES
from feature_store.model import FeatureStoreError
from feature_store.offline import conform, point_in_time_join

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def user_snapshots(spark):
    """u1's plays_7d equals the day of its snapshot: 1 as of 11-01, 2 as of 11-02, ..."""
    days = [dt.date(2026, 11, d) for d in (1, 2, 3, 5)]
    rows = [
        {"user_id": "u1", "as_of_date": d, "plays_7d": d.day, "country": f"C{d.day}"} for d in days
    ]
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("as_of_date", pa.date32()),
            ("plays_7d", pa.int64()),
            ("country", pa.string()),
        ]
    )
    return spark.createDataFrame(pa.Table.from_pylist(rows, schema=schema))


CASES = [
    ("2026-10-31T12:00:00", None),  # before any snapshot
    ("2026-11-02T00:00:00", 1),  # 11-01 became available at this very instant
    ("2026-11-02T23:59:59", 1),  # 11-02 is not complete yet
    ("2026-11-03T00:00:00", 2),
    ("2026-11-04T05:00:00", 3),
    ("2026-11-05T18:00:00", 3),  # no 11-04 snapshot: 11-03 is still fresh (until 11-06 00:00)
    ("2026-11-07T23:59:59", 5),  # 11-05 fresh until 11-08 00:00
    ("2026-11-08T00:00:00", None),  # 11-05 expired (ttl 2 days), nothing newer
]


def test_point_in_time_join_takes_the_newest_fresh_snapshot_never_a_future_one(
    spark, user_snapshots
):
    rows = [("u1", at(ts), i) for i, (ts, _) in enumerate(CASES)] + [("u2", at("2026-11-04"), 99)]
    entity_rows = spark.createDataFrame(rows, "user_id string, event_timestamp timestamp, n int")

    joined = point_in_time_join(entity_rows, user_snapshots, USER_FEATURES, ["plays_7d", "country"])

    assert joined.columns == [
        "user_id", "event_timestamp", "n", "user_features__plays_7d", "user_features__country",
    ]  # fmt: skip
    result = {
        r["n"]: (r["user_features__plays_7d"], r["user_features__country"])
        for r in joined.collect()
    }
    for i, (ts, plays) in enumerate(CASES):
        assert result[i] == (plays, plays and f"C{plays}"), ts
    assert result[99] == (None, None)  # an entity without features keeps its row


def test_point_in_time_join_needs_key_and_timestamp(spark, user_snapshots):
    entity_rows = spark.createDataFrame([("u1",)], "user_id string")
    with pytest.raises(FeatureStoreError, match=r"need columns \['event_timestamp'\]"):
        point_in_time_join(entity_rows, user_snapshots, USER_FEATURES, ["plays_7d"])


def test_conform_names_the_missing_declared_columns(user_snapshots):
    with pytest.raises(FeatureStoreError, match="user_features: the job's output lacks"):
        conform(user_snapshots, USER_FEATURES)
