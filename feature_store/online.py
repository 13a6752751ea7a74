"""The online store: the feature vectors of one snapshot (by default the newest) of every online
view, in Redis, for apps to look up by entity id (`get_online_features`).

Layout (P = settings.feature_store_prefix, V = view name, e.g. `fs:user_features:...`):

    P:V:current               -> the live version, e.g. `20261103-1a2b3c4d` (no TTL)
    P:V:<version>:meta        -> JSON {version, as_of_date, features, rows, buckets, ...}
    P:V:<version>:b:<bucket>  -> hash {entity id: JSON object {feature: value}}

An entity's bucket is crc32(utf-8 id) mod `buckets` (CRC-32/ISO-HDLC, as zlib computes it, so
readers in any language find it); a version has ceil(rows / ENTITIES_PER_BUCKET) buckets.
Hashes of a few hundred vectors let one command carry many vectors, which is what makes bulk
writes fast (see bench/bench_features.py); one key per entity costs a command per vector.

Every version key carries the view's TTL, counted from materialization. A materialization
writes a whole new version with pipelined HSETs, then switches `current` with one atomic
`SET ... GET` and unlinks the version it replaced. Readers WATCH `current`, read it and the
version's meta, and fetch the values in a MULTI/EXEC: if the pointer moved in between, EXEC
aborts and the read retries, so a reader never mixes versions nor sees a half-written one.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import operator
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import redis

from audotics.db import redis_client
from audotics.settings import Settings, get_settings
from feature_store.definitions import FEATURE_VIEWS
from feature_store.model import FeatureStoreError, FeatureView, resolve_refs

MAX_READ_ATTEMPTS = 20
ENTITIES_PER_BUCKET = 512
# The views served online; the others (training inputs) stay in the offline store.
ONLINE_VIEWS: dict[str, FeatureView] = {n: v for n, v in FEATURE_VIEWS.items() if v.online}


def pointer_key(prefix: str, view: FeatureView) -> str:
    return f"{prefix}:{view.name}:current"


def meta_key(prefix: str, view: FeatureView, version: str) -> str:
    return f"{prefix}:{view.name}:{version}:meta"


def bucket_key(prefix: str, view: FeatureView, version: str, bucket: int) -> str:
    return f"{prefix}:{view.name}:{version}:b:{bucket}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Materialization:
    view: str
    as_of_date: dt.date
    version: str
    rows: int
    seconds: float
    replaced_version: str | None

    def summary(self) -> dict[str, str | int | float]:
        """JSON-friendly, for logs and Airflow XComs."""
        return {
            "view": self.view,
            "as_of_date": self.as_of_date.isoformat(),
            "version": self.version,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "replaced_version": self.replaced_version or "",
        }


def encoded_vectors(table: pa.Table, view: FeatureView) -> Iterator[tuple[str, bytes]]:
    """(entity id, JSON of its features) per row, maps as JSON objects."""
    names = view.feature_names
    maps = {f.name for f in view.features if pa.types.is_map(f.dtype.arrow_type)}
    for batch in table.select([view.entity.join_key, *names]).to_batches():
        columns = [batch.column(i).to_pylist() for i in range(1, batch.num_columns)]
        for i, name in enumerate(names):
            if name in maps:
                columns[i] = [dict(v) if v is not None else None for v in columns[i]]
        for entity_id, *values in zip(batch.column(0).to_pylist(), *columns, strict=True):
            yield entity_id, orjson.dumps(dict(zip(names, values, strict=True)))


def bucket_count(rows: int) -> int:
    return max(1, math.ceil(rows / ENTITIES_PER_BUCKET))


def bucket_of(entity_id: str, buckets: int) -> int:
    return zlib.crc32(entity_id.encode()) % buckets


def bucketed_vectors(
    table: pa.Table, view: FeatureView, buckets: int
) -> Iterator[tuple[int, dict[str, bytes]]]:
    """The table's encoded vectors grouped by bucket: (bucket, {entity id: vector}), streamed
    from the table sorted by bucket."""
    ids = table.column(view.entity.join_key).to_pylist()
    row_buckets = np.fromiter((bucket_of(i, buckets) for i in ids), np.int64, len(ids))
    order = np.argsort(row_buckets, kind="stable")
    rows = zip(row_buckets[order].tolist(), encoded_vectors(table.take(order), view), strict=True)
    for bucket, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        yield bucket, dict(vector for _, vector in group)


def _unlink_version(client: redis.Redis, prefix: str, view: FeatureView, version: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:{view.name}:{version}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])


def write_version(
    client: redis.Redis,
    settings: Settings,
    view: FeatureView,
    as_of: dt.date,
    buckets: int,
    groups: Iterable[tuple[int, Mapping[str, bytes]]],
) -> Materialization:
    """Write `groups` ((bucket, {entity id: vector}) of `buckets` buckets) as a new version of
    `view`, then make it the live one."""
    started = time.perf_counter()
    prefix = settings.feature_store_prefix
    ttl = int(view.ttl.total_seconds())
    version = f"{as_of:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    rows = pending = 0
    pipe = client.pipeline(transaction=False)
    for bucket, vectors in groups:
        key = bucket_key(prefix, view, version, bucket)
        pipe.hset(key, mapping=vectors)
        pipe.expire(key, ttl)
        rows += len(vectors)
        pending += len(vectors)
        if pending >= settings.feature_store_batch_size:
            pipe.execute()
            pending = 0
    meta = {
        "version": version,
        "as_of_date": as_of,
        "features": view.feature_names,
        "rows": rows,
        "buckets": buckets,
        "materialized_at": dt.datetime.now(dt.UTC),
    }
    pipe.set(meta_key(prefix, view, version), orjson.dumps(meta), ex=ttl)
    pipe.execute()
    # Only now, with every value written, does the version become visible.
    replaced = _text(client.set(pointer_key(prefix, view), version, get=True))
    if replaced:
        _unlink_version(client, prefix, view, replaced)
    return Materialization(view.name, as_of, version, rows, time.perf_counter() - started, replaced)


def materialize(
    settings: Settings,
    view_names: Sequence[str] | None = None,
    *,
    as_of: dt.date | None = None,
    client: redis.Redis | None = None,
) -> list[Materialization]:
    """Copy the snapshot as of `as_of` (default: each view's newest) of each online view
    (default: all) from the offline store to the online store."""
    # Imported here: the offline store brings Spark along, which readers of this module
    # (get_online_features in an app) never need.
    from feature_store.offline import read_snapshot

    unknown = sorted(set(view_names or ()) - set(ONLINE_VIEWS))
    if unknown:
        raise FeatureStoreError(
            f"no online feature views {unknown}; online: {sorted(ONLINE_VIEWS)}"
        )
    client = client or redis_client(settings)
    results = []
    for name in view_names or ONLINE_VIEWS:
        view = ONLINE_VIEWS[name]
        snapshot = read_snapshot(settings, view, as_of)
        buckets = bucket_count(snapshot.rows.num_rows)
        groups = bucketed_vectors(snapshot.rows, view, buckets)
        results.append(write_version(client, settings, view, snapshot.as_of, buckets, groups))
    return results


def get_online_features(
    entity_ids: Iterable[str],
    feature_names: Iterable[str],
    *,
    settings: Settings | None = None,
    client: redis.Redis | None = None,
) -> dict[str, dict[str, Any]]:
    """The live feature values of some entities of one entity type.

    `feature_names`: `view:feature` or bare names one view declares, all of one entity (user or
    track); `entity_ids`: ids of that entity. Returns `{entity_id: {requested name: value}}` in
    the order of `entity_ids`; a value is None when the entity has no live vector (unknown, not
    materialized, or expired). Lists and maps come back as Python lists and dicts.
    """
    refs = resolve_refs(ONLINE_VIEWS, feature_names, single_entity=True)
    ids = list(dict.fromkeys(entity_ids))
    if not ids:
        return {}
    settings = settings or get_settings()
    client = client or redis_client(settings)
    prefix = settings.feature_store_prefix
    views = list(dict.fromkeys(ref.view for ref in refs))
    vectors = _read_live_vectors(client, prefix, views, ids)
    return {
        entity_id: {
            ref.requested_name: (vectors[ref.view][i] or {}).get(ref.feature.name) for ref in refs
        }
        for i, entity_id in enumerate(ids)
    }


def _read_live_vectors(
    client: redis.Redis, prefix: str, views: list[FeatureView], ids: list[str]
) -> dict[FeatureView, list[dict[str, Any] | None]]:
    pointers = [pointer_key(prefix, view) for view in views]
    with client.pipeline(transaction=True) as pipe:
        for _ in range(MAX_READ_ATTEMPTS):
            try:
                # Under WATCH the pipeline runs commands at once, until multi().
                pipe.watch(*pointers)
                versions = [_text(v) for v in pipe.mget(pointers)]
                live = [(view, v) for view, v in zip(views, versions, strict=True) if v]
                metas = pipe.mget([meta_key(prefix, view, v) for view, v in live]) if live else []
                pipe.multi()
                reads = []  # (view, positions in ids) per HMGET, in pipeline order
                for (view, version), meta in zip(live, metas, strict=True):
                    if meta is None:  # expired; or just replaced, and then EXEC aborts
                        continue
                    buckets = orjson.loads(meta)["buckets"]
                    by_bucket: dict[int, list[int]] = {}
                    for position, entity_id in enumerate(ids):
                        by_bucket.setdefault(bucket_of(entity_id, buckets), []).append(position)
                    for bucket, positions in by_bucket.items():
                        pipe.hmget(
                            bucket_key(prefix, view, version, bucket), [ids[p] for p in positions]
                        )
                        reads.append((view, positions))
                replies = pipe.execute()
            except redis.WatchError:
                continue  # a materialization switched a pointer meanwhile: read again
            vectors: dict[FeatureView, list[dict[str, Any] | None]] = {
                view: [None] * len(ids) for view in views
            }
            for (view, positions), values in zip(reads, replies, strict=True):
                for position, raw in zip(positions, values, strict=True):
                    vectors[view][position] = orjson.loads(raw) if raw else None
            return vectors
    raise FeatureStoreError(
        f"online read of {[v.name for v in views]} kept racing materializations "
        f"({MAX_READ_ATTEMPTS} attempts)"
    )


def erase_entities(settings: Settings, entity: str, entity_ids: Sequence[str]) -> int:
    """Remove the entities' vectors from every version of every view of `entity` in Redis
    (GDPR erasure): the live one, any not yet expired and one a materialization is writing
    (whose meta, hence bucket count, does not exist yet: so every bucket is asked, not only
    the entity's). Returns how many vectors were removed. The offline rows are the lake's.
    """
    if not entity_ids:
        return 0
    client = redis_client(settings)
    prefix, removed = settings.feature_store_prefix, 0
    for view in ONLINE_VIEWS.values():
        if view.entity.name != entity:
            continue
        pattern = bucket_key(prefix, view, "*", 0).removesuffix("0") + "*"
        pipe = client.pipeline(transaction=False)
        for key in client.scan_iter(match=pattern, count=1_000):
            pipe.hdel(key, *entity_ids)
        removed += sum(pipe.execute())
    return removed
