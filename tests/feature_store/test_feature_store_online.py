"""The online store against a real (embedded) Redis and real Delta offline tables."""

from __future__ import annotations

import datetime as dt
import threading

import pyarrow as pa
import pytest

from audotics import lake
from audotics.db import redis_client
from feature_store.definitions import TRACK_FEATURES, USER_FEATURES
from feature_store.model import Dtype, FeatureStoreError, FeatureView
from feature_store.online import (
    ENTITIES_PER_BUCKET,
    bucket_of,
    get_online_features,
    materialize,
    pointer_key,
    write_version,
)

D = dt.date(2026, 11, 10)
SAMPLE_VALUES = {
    Dtype.INT64: lambda i: i,
    Dtype.FLOAT64: lambda i: i / 8,
    Dtype.STRING: lambda i: f"value-{i}",
    Dtype.FLOAT64_LIST: lambda i: [i / 24] * 24,
    Dtype.STRING_TO_FLOAT64: lambda i: [("jazz", 0.25), ("rock", 0.75 + i)],
}


def offline_rows(view: FeatureView, entity_ids: list[str], as_of: dt.date, seed: int) -> pa.Table:
    """One row per entity; each feature a distinct value of its type (None for every 5th)."""
    rows = []
    for n, entity_id in enumerate(entity_ids):
        row = {view.entity.join_key: entity_id, "as_of_date": as_of}
        for k, feature in enumerate(view.features):
            value = seed * 1000 + n * 100 + k
            row[feature.name] = None if (n + k) % 5 == 0 else SAMPLE_VALUES[feature.dtype](value)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=view.arrow_schema())


@pytest.fixture
def store(running_services, tmp_path, request):
    """Settings with their own lake and Redis key prefix, and a Redis client."""
    settings = running_services.model_copy(
        update={"lake_uri": str(tmp_path / "lake"), "feature_store_prefix": request.node.name}
    )
    return settings, redis_client(settings)


def write_offline(settings, view: FeatureView, table: pa.Table) -> None:
    lake.write_arrow(settings, view.table, table)


def as_python(value):
    """Offline (Arrow) values as the online store returns them: maps as dicts."""
    return (
        dict(value) if isinstance(value, list) and value and isinstance(value[0], tuple) else value
    )


def test_online_vector_equals_the_newest_offline_row(store):
    settings, _ = store
    users = [f"user-{i}" for i in range(30)]
    write_offline(
        settings, USER_FEATURES, offline_rows(USER_FEATURES, users, D - dt.timedelta(days=1), 1)
    )
    newest = offline_rows(USER_FEATURES, users, D, 2)
    write_offline(settings, USER_FEATURES, newest)

    [result] = materialize(settings, ["user_features"])

    assert (result.as_of_date, result.rows) == (D, 30)
    names = USER_FEATURES.feature_names
    online = get_online_features(users, [f"user_features:{n}" for n in names], settings=settings)
    assert list(online) == users
    for row in newest.to_pylist():
        expected = {f"user_features:{name}": as_python(row[name]) for name in names}
        assert online[row["user_id"]] == expected


def test_materializes_the_snapshot_asked_for_and_only_online_views(store):
    settings, _ = store
    users = [f"user-{i}" for i in range(10)]
    day_before = D - dt.timedelta(days=1)
    older = offline_rows(USER_FEATURES, users, day_before, 1)
    write_offline(settings, USER_FEATURES, older)
    write_offline(settings, USER_FEATURES, offline_rows(USER_FEATURES, users, D, 2))

    [result] = materialize(settings, ["user_features"], as_of=day_before)

    assert (result.as_of_date, result.rows) == (day_before, 10)
    online = get_online_features(users, ["user_features:country"], settings=settings)
    assert [v["user_features:country"] for v in online.values()] == older["country"].to_pylist()
    with pytest.raises(FeatureStoreError, match="no rows as of 2026-11-11"):
        materialize(settings, ["user_features"], as_of=D + dt.timedelta(days=1))
    # A training input is not served: not materialized, not looked up.
    with pytest.raises(FeatureStoreError, match=r"no online feature views \['interactions'\]"):
        materialize(settings, ["interactions"])
    with pytest.raises(FeatureStoreError, match="unknown feature view 'interactions'"):
        get_online_features(["u1"], ["interactions:plays"], settings=settings)


def test_names_missing_entities_and_errors(store):
    settings, _ = store
    offline = offline_rows(TRACK_FEATURES, ["t1"], D, 1)
    write_offline(settings, TRACK_FEATURES, offline)
    materialize(settings, ["track_features"])

    online = get_online_features(
        ["t1", "unknown"], ["genre", "track_features:unique_listeners_7d"], settings=settings
    )
    [t1] = offline.to_pylist()
    assert (t1["genre"], t1["unique_listeners_7d"]) == ("value-1018", 1011)
    assert online["t1"] == {"genre": "value-1018", "track_features:unique_listeners_7d": 1011}
    assert online["unknown"] == {"genre": None, "track_features:unique_listeners_7d": None}
    # Not materialized yet: no live version, all None.
    assert get_online_features(["u1"], ["country"], settings=settings) == {"u1": {"country": None}}
    with pytest.raises(FeatureStoreError, match="ambiguous"):
        get_online_features(["t1"], ["plays_7d"], settings=settings)
    with pytest.raises(FeatureStoreError, match="one entity"):
        get_online_features(["t1"], ["genre", "country"], settings=settings)
    with pytest.raises(FeatureStoreError, match="no feature 'nope'"):
        get_online_features(["t1"], ["track_features:nope"], settings=settings)


def test_a_half_written_version_is_never_read_and_old_versions_go(store):
    settings, client = store
    write_offline(settings, TRACK_FEATURES, offline_rows(TRACK_FEATURES, ["t1", "t2"], D, 1))
    [first] = materialize(settings, ["track_features"])

    def crashing_groups():
        yield 0, {"t1": b'{"genre": "half-written"}'}
        raise RuntimeError("materialization died")

    with pytest.raises(RuntimeError):
        write_version(client, settings, TRACK_FEATURES, D, 1, crashing_groups())
    live = get_online_features(["t1"], ["genre"], settings=settings)
    assert live == {"t1": {"genre": "value-1018"}}
    pointer = pointer_key(settings.feature_store_prefix, TRACK_FEATURES)
    assert client.get(pointer).decode() == first.version

    [second] = materialize(settings, ["track_features"])
    assert second.replaced_version == first.version
    prefix = settings.feature_store_prefix
    assert list(client.scan_iter(match=f"{prefix}:track_features:{first.version}:*")) == []
    ttl = client.ttl(f"{prefix}:track_features:{second.version}:b:0")
    assert 0 < ttl <= TRACK_FEATURES.ttl.total_seconds()


def test_many_entities_spread_over_buckets(store):
    settings, client = store
    tracks = [f"track-{i}" for i in range(3 * ENTITIES_PER_BUCKET)]
    offline = offline_rows(TRACK_FEATURES, tracks, D, 3)
    write_offline(settings, TRACK_FEATURES, offline)
    [result] = materialize(settings, ["track_features"])

    prefix = settings.feature_store_prefix
    buckets = list(client.scan_iter(match=f"{prefix}:track_features:{result.version}:b:*"))
    assert len(buckets) == 3
    assert client.hget(
        f"{prefix}:track_features:{result.version}:b:{bucket_of('track-7', 3)}", "track-7"
    )
    online = get_online_features(tracks, ["genre"], settings=settings)
    assert [v["genre"] for v in online.values()] == offline.column("genre").to_pylist()


def test_readers_never_mix_versions_while_materializations_switch(store):
    settings, client = store
    entity_ids = [f"t{i}" for i in range(200)]
    buckets = 4

    def groups(marker: int):
        by_bucket: dict[int, dict[str, bytes]] = {}
        for entity_id in entity_ids:
            vector = b'{"plays_7d": %d}' % marker
            by_bucket.setdefault(bucket_of(entity_id, buckets), {})[entity_id] = vector
        return by_bucket.items()

    write_version(client, settings, TRACK_FEATURES, D, buckets, groups(0))
    stop = threading.Event()

    def keep_switching():
        marker = 1
        while not stop.wait(0.02):  # a switch every 20 ms: far more often than in real life
            write_version(client, settings, TRACK_FEATURES, D, buckets, groups(marker))
            marker += 1

    writer = threading.Thread(target=keep_switching)
    writer.start()
    try:
        seen = set()
        for _ in range(100):
            values = {
                v["track_features:plays_7d"]
                for v in get_online_features(
                    entity_ids, ["track_features:plays_7d"], settings=settings, client=client
                ).values()
            }
            assert len(values) == 1 and None not in values  # one whole version per read
            seen |= values
    finally:
        stop.set()
        writer.join()
    assert len(seen) > 1  # the reads did overlap switches
