"""The feature job end to end: silver Delta tables in, features Delta tables out (Spark writes,
delta-rs commits), then a training set and the online store from them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from audotics import lake
from audotics.lake import tables
from feature_store.definitions import TRACK_FEATURES, USER_FEATURES
from feature_store.offline import get_historical_features
from feature_store.online import get_online_features, materialize
from spark_jobs.features.job import newest_event_date, run
from tests.spark_jobs.features.test_features_transforms import (
    BASE_EVENTS,
    TRACKS,
    TRACKS_SCHEMA,
    USERS,
    USERS_SCHEMA,
    D,
    at,
    silver_events,
)


def columns(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in schema]


@pytest.fixture(scope="module")
def built(spark, running_services, tmp_path_factory):
    """A lake with the small silver world, features built as of D twice (a rerun)."""
    settings = running_services.model_copy(
        update={
            "lake_uri": str(tmp_path_factory.mktemp("features-job") / "lake"),
            "feature_store_prefix": "fs-job",
        }
    )
    lake.write_arrow(settings, tables.SILVER_EVENTS, silver_events(BASE_EVENTS))
    lake.write_arrow(
        settings, tables.SILVER_USERS, pa.Table.from_pylist(USERS, schema=USERS_SCHEMA)
    )
    lake.write_arrow(
        settings, tables.SILVER_TRACKS, pa.Table.from_pylist(TRACKS, schema=TRACKS_SCHEMA)
    )
    first = run(spark, settings, D, "first")
    rerun = run(spark, settings, D, "rerun")
    return settings, first, rerun


def test_tables_follow_the_contract_and_reruns_replace_the_partition(built):
    settings, first, rerun = built
    assert [(w.table, w.rows) for w in first] == [
        ("user_features", 2),
        ("track_features", 3),
        ("interactions", 5),
    ]
    assert [(w.table, w.rows) for w in rerun] == [(w.table, w.rows) for w in first]
    assert all(r.version == f.version + 1 for r, f in zip(rerun, first, strict=True))

    interactions = lake.read_arrow(settings, tables.INTERACTIONS)
    assert interactions.num_rows == 5  # the rerun replaced D's partition, no duplicates
    for view in (USER_FEATURES, TRACK_FEATURES):
        table = lake.read_arrow(settings, view.table)
        assert columns(table.schema) == columns(view.arrow_schema())
    # The CLI's default snapshot date: the newest silver day (one event at 11-11 00:00).
    assert newest_event_date(settings) == dt.date(2026, 11, 11)
    confidence = {(r["user_id"], r["track_id"]): r["confidence"] for r in interactions.to_pylist()}
    assert confidence[("u1", "t1")] == 7.5


def test_interactions_are_written_as_the_catalog_declares_them(built):
    settings, _, _ = built
    written = lake.open_table(settings, tables.INTERACTIONS)
    assert columns(pa.schema(written.schema().to_arrow())) == columns(tables.INTERACTIONS.schema)
    assert written.metadata().partition_columns == list(tables.INTERACTIONS.partition_by)


def test_training_set_joins_user_and_track_features_point_in_time(spark, built):
    settings, _, _ = built
    rows = spark.createDataFrame(
        [
            ("u1", "t1", at("2026-11-10T20:00:00")),  # D not complete yet: nothing earlier
            ("u1", "t1", at("2026-11-11T09:00:00")),  # D is available
            ("u2", "t3", at("2026-11-12T23:00:00")),  # still fresh (ttl 2 days)
            ("u2", "t3", at("2026-11-13T00:00:00")),  # expired
        ],
        "user_id string, track_id string, event_timestamp timestamp",
    )
    training = get_historical_features(
        spark, settings, rows, ["user_features:plays_7d", "country", "track_features:plays_28d"]
    ).orderBy("event_timestamp")
    assert [tuple(r)[3:] for r in training.collect()] == [
        (None, None, None),
        (2, "SE", 2),
        (0, "US", 1),
        (None, None, None),
    ]


def test_online_vectors_equal_the_newest_offline_rows(built):
    settings, _, _ = built
    materialize(settings)
    offline = lake.read_arrow(settings, tables.USER_FEATURES).to_pylist()
    names = [f"user_features:{name}" for name in USER_FEATURES.feature_names]
    online = get_online_features([r["user_id"] for r in offline], names, settings=settings)
    for row in offline:
        expected = {
            f"user_features:{name}": dict(value)
            if name.startswith("genre_affinity") and value
            else value
            for name, value in ((n, row[n]) for n in USER_FEATURES.feature_names)
        }
        assert online[row["user_id"]] == expected
    assert online["u1"]["user_features:genre_affinity_90d"] == {
        "jazz": 0.25,
        "pop": 0.25,
        "rock": 0.5,
    }
    assert dt.date.fromisoformat(str(row["as_of_date"])) == D
