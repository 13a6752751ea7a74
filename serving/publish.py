"""Publish a model version from the lake into Redis, and roll back to the previous one.

A publish reads the version's gold/recommendations and gold/similar_tracks and the current
catalog (silver/tracks, silver/artists), bulk loads them into the version's own keyspace with
non-transactional pipelines, verifies the key counts against the lake, and only then switches
the `current` pointer (one MULTI/EXEC). The version it replaces stays as `previous` for an
instant rollback; any older one expires. One publisher at a time holds a Redis lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.lock import Lock

from audotics import lake
from audotics.errors import AudoticsError
from audotics.settings import Settings
from serving import keys
from serving.documents import POPULAR_SOURCE, Batch, TrackMetadata, document, documents, header
from serving.resp import pack

log = logging.getLogger(__name__)

DOCUMENTS_PER_COMMAND = 500  # fields of one HSET
COMMANDS_PER_WRITE = 8  # HSETs sent in one write
LOCK_TTL_S = 60  # renewed at every write: lapses soon if the publisher dies
RETIRED_TTL_S = 600  # grace before an older version's keys vanish (apps caching the pointer)
RECOMMENDATION_SOURCES = ["model", "fallback"]  # gold/recommendations.source, data contract


class PublishError(AudoticsError):
    """Publishing or rolling back was refused; the message says what is missing or wrong."""


@dataclass(frozen=True)
class PublishResult:
    action: str  # "published", "unchanged" (already current) or "rolled_back"
    model_version: str  # the version now current
    previous: str | None  # the version a rollback would return to
    users: int  # recommendation documents of the current version
    tracks: int  # similar-tracks documents of the current version
    retired: tuple[str, ...]  # older versions now expiring
    seconds: float  # the whole call
    load_seconds: float  # building documents and writing them to Redis (0 if nothing loaded)

    def summary(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        loaded = self.users + self.tracks
        rate = f", {loaded / self.load_seconds:,.0f} documents/s" if self.load_seconds else ""
        return (
            f"{self.action}: {self.model_version} ({self.users:,} users, {self.tracks:,} tracks"
            f"{rate}) in {self.seconds:.2f}s; previous: {self.previous or '-'}"
            + (f"; retiring: {', '.join(self.retired)}" if self.retired else "")
        )


@dataclass(frozen=True)
class VersionRows:
    """What the lake holds for one model version, ready to become documents."""

    model_version: str
    recommendations: pa.Table  # sorted by user_id, rank; with track `members`
    similar: pa.Table  # sorted by track_id, rank; with track `members`
    popular: pa.Table  # rank, score, source, members
    users: int
    tracks: int
    table_versions: dict[str, int]  # Delta versions read, recorded in the manifest


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_dsn, socket_connect_timeout=5, socket_timeout=60)


def example_curl(settings: Settings, model_version: str) -> str:
    """A working request to `audotics serve` for a user of `model_version`. The key is shown
    only if it is the shipped demo key: real keys stay out of terminals and logs."""
    user = _text(redis_client(settings).hrandfield(keys.users_key(model_version)))
    demo_key = Settings.model_fields["api_keys"].default
    key = demo_key if demo_key in settings.api_key_set else "<a key of AUDOTICS_API_KEYS>"
    url = f"http://{settings.api_host}:{settings.api_port}/v1/users/{user}/recommendations"
    return f"curl -H 'X-API-Key: {key}' '{url}?limit=5'"


def published_model_version(settings: Settings) -> str:
    """The registry's published model: the latest row with status 'published'."""
    registry = lake.read_arrow(
        settings,
        "models",
        "registry",
        columns=["model_version", "status_changed_at"],
        filter=pc.field("status") == "published",
    )
    if registry.num_rows == 0:
        raise PublishError(
            "models/registry has no row with status 'published': publish a model in training, "
            "or choose one with --model-version"
        )
    latest = registry.sort_by([("status_changed_at", "descending")])
    return latest["model_version"][0].as_py()


def publish_recommendations(settings: Settings, model_version: str | None = None) -> PublishResult:
    """Make `model_version` (default: the registry's published model) the one Redis serves.

    Idempotent: a version that is already current and complete is left as it is; any other
    is reloaded from scratch into its own keyspace before readers are switched to it."""
    started = time.perf_counter()
    version = keys.checked_version(model_version or published_model_version(settings))
    with _redis_errors():
        client = redis_client(settings)
        if _is_current(client, version):
            return _unchanged(client, version, started)
        rows = read_version(settings, version)
        with _publish_lock(client) as lock:
            if _is_current(client, version):  # another publisher got there first
                return _unchanged(client, version, started)
            load_started = time.perf_counter()
            _load(client, rows, lock)
            _verify(client, rows)
            load_seconds = time.perf_counter() - load_started
            previous = _switch(client, version)
            retired = _retire(client, keep={version, previous})
    result = PublishResult(
        "published", version, previous, rows.users, rows.tracks, retired,
        time.perf_counter() - started, load_seconds,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


def rollback(settings: Settings) -> PublishResult:
    """Switch readers back to the previous version; a second rollback returns to the first."""
    started = time.perf_counter()
    with _redis_errors():
        client = redis_client(settings)
        with _publish_lock(client):
            current, previous = (_text(v) for v in client.mget(keys.CURRENT, keys.PREVIOUS))
            if previous is None:
                raise PublishError("nothing to roll back to: no previous version in Redis")
            manifest = _manifest(client, previous)
            if manifest.get("status") != "ready":
                raise PublishError(
                    f"previous version {previous} is no longer complete in Redis: publish it "
                    f"again with --model-version {previous}"
                )
            with client.pipeline(transaction=True) as pipe:
                pipe.set(keys.CURRENT, previous)
                if current is not None:
                    pipe.set(keys.PREVIOUS, current)
                pipe.execute()
    result = PublishResult(
        "rolled_back", previous, current, int(manifest["users"]), int(manifest["tracks"]), (),
        time.perf_counter() - started, 0.0,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


# --- reading the lake ---------------------------------------------------------------------------


def read_version(settings: Settings, version: str) -> VersionRows:
    recommendations, recommendations_version = _read_gold(
        settings, "recommendations", ["user_id", "rank", "track_id", "score", "source"], version
    )
    similar, similar_version = _read_gold(
        settings, "similar_tracks", ["track_id", "rank", "similar_track_id", "score"], version
    )
    _check_rows(recommendations, "gold/recommendations", ["user_id", "rank", "track_id", "score"])
    _check_rows(similar, "gold/similar_tracks", ["track_id", "rank", "similar_track_id", "score"])
    unknown_sources = set(pc.unique(recommendations["source"]).to_pylist()) - set(
        RECOMMENDATION_SOURCES
    )
    if unknown_sources:
        raise PublishError(
            f"gold/recommendations has source values {sorted(map(str, unknown_sources))} for "
            f"{version}: the contract allows {RECOMMENDATION_SOURCES}"
        )
    metadata = TrackMetadata(
        _current_rows(settings, "tracks", ["track_id", "title", "artist_id"]),
        _current_rows(settings, "artists", ["artist_id", "name"]),
    )
    recommendations = recommendations.sort_by([("user_id", "ascending"), ("rank", "ascending")])
    # The similar track is the item; the track it is similar to keys the document.
    similar = similar.sort_by([("track_id", "ascending"), ("rank", "ascending")])
    users = len(pc.unique(recommendations["user_id"]))
    return VersionRows(
        model_version=version,
        recommendations=recommendations.append_column(
            "members", metadata.members(recommendations["track_id"])
        ),
        similar=similar.append_column("members", metadata.members(similar["similar_track_id"])),
        popular=_popular(recommendations, users, metadata),
        users=users,
        tracks=len(pc.unique(similar["track_id"])),
        table_versions={
            "gold/recommendations": recommendations_version,
            "gold/similar_tracks": similar_version,
        },
    )


def _read_gold(
    settings: Settings, table: str, columns: list[str], version: str
) -> tuple[pa.Table, int]:
    table_version = lake.version(settings, "gold", table)
    if table_version is None:
        raise PublishError(f"gold/{table} does not exist yet: run training before publishing")
    rows = lake.read_arrow(
        settings, "gold", table, version=table_version, columns=columns,
        filter=pc.field("model_version") == version,
    )  # fmt: skip
    if rows.num_rows == 0:
        raise PublishError(
            f"gold/{table} (version {table_version}) has no rows for model version {version}"
        )
    return rows, table_version


def _check_rows(rows: pa.Table, table: str, required: list[str]) -> None:
    for column in required:
        if rows[column].null_count:
            raise PublishError(f"{table} has {rows[column].null_count} null values in {column}")
    if not pc.all(pc.is_finite(rows["score"])).as_py():
        raise PublishError(f"{table} has scores that are not finite numbers (NaN or infinity)")
    if pc.min(rows["rank"]).as_py() < 1:
        raise PublishError(f"{table} has ranks below 1 (ranks are 1-based)")


def _current_rows(settings: Settings, table: str, columns: list[str]) -> pa.Table:
    return lake.read_arrow(
        settings,
        "silver",
        table,
        columns=columns,
        filter=pc.field("is_current") == True,  # noqa: E712
    )


def _popular(recommendations: pa.Table, users: int, metadata: TrackMetadata) -> pa.Table:
    """The version's popular list: the tracks recommended to the most users (score: the share
    of `users`), as long as the longest user list. Served to users without recommendations."""
    size = pc.max(pc.value_counts(recommendations["user_id"]).field("counts")).as_py()
    counts = recommendations.group_by("track_id").aggregate([("user_id", "count_distinct")])
    top = counts.sort_by([("user_id_count_distinct", "descending"), ("track_id", "ascending")])
    top = top.slice(0, size)
    return pa.table(
        {
            "rank": pa.array(range(1, top.num_rows + 1), pa.int32()),
            "score": pc.divide(pc.cast(top["user_id_count_distinct"], pa.float64()), users),
            "source": pa.array([POPULAR_SOURCE] * top.num_rows),
            "members": metadata.members(top["track_id"]),
        }
    )


# --- writing Redis ------------------------------------------------------------------------------


def _load(client: redis.Redis, rows: VersionRows, lock: Lock) -> None:
    version = rows.model_version
    # A clean reload: nothing of an earlier, perhaps interrupted, attempt survives.
    client.unlink(*keys.version_keys(version))
    client.sadd(keys.VERSIONS, version)
    client.hset(keys.manifest_key(version), mapping={"status": "loading"})
    user_batches = documents(
        rows.recommendations, key="user_id", opening=header(version, fallback=False),
        batch_groups=DOCUMENTS_PER_COMMAND,
    )  # fmt: skip
    _load_hash(client, keys.users_key(version), user_batches, lock)
    track_batches = documents(
        rows.similar, key="track_id", opening=header(version, fallback=None),
        batch_groups=DOCUMENTS_PER_COMMAND,
    )  # fmt: skip
    _load_hash(client, keys.similar_key(version), track_batches, lock)
    client.set(keys.popular_key(version), document(header(version, fallback=True), rows.popular))


def _load_hash(client: redis.Redis, key: str, batches: Iterator[Batch], lock: Lock) -> None:
    """One HSET per batch, several HSETs per write. The replies of a write are read only after
    the next write is built and sent, so Redis stores one while Python builds the next. (Packed
    here: redis-py would make a system call per 4 KB document.)"""
    connection = client.connection_pool.get_connection()
    try:
        commands: list[bytes] = []
        unread = 0  # replies of the previous write
        for batch in batches:
            fields = [
                part for pair in zip(batch.keys, batch.documents, strict=True) for part in pair
            ]
            commands.append(pack("HSET", key, *fields))
            if len(commands) == COMMANDS_PER_WRITE:
                connection.send_packed_command([b"".join(commands)])
                _read_replies(connection, unread)
                unread = len(commands)
                commands.clear()
                lock.reacquire()
        connection.send_packed_command([b"".join(commands)])
        _read_replies(connection, unread + len(commands))
    except BaseException:
        connection.disconnect()  # its unread replies must not answer the next command
        raise
    finally:
        client.connection_pool.release(connection)


def _read_replies(connection: redis.Connection, count: int) -> None:
    for _ in range(count):
        connection.read_response()  # raises on an error reply


def _verify(client: redis.Redis, rows: VersionRows) -> None:
    """Every user and track of the lake has its document, and the popular list is there."""
    version = rows.model_version
    with client.pipeline(transaction=False) as pipe:
        pipe.hlen(keys.users_key(version))
        pipe.hlen(keys.similar_key(version))
        pipe.exists(keys.popular_key(version))
        users, tracks, popular = pipe.execute()
    if (users, tracks, popular) != (rows.users, rows.tracks, 1):
        raise PublishError(
            f"verification of {version} failed, readers stay on the current version: Redis has "
            f"{users} user and {tracks} track documents (popular list: {bool(popular)}), "
            f"the lake {rows.users} users and {rows.tracks} tracks"
        )
    client.hset(
        keys.manifest_key(version),
        mapping={
            "status": "ready",
            "model_version": version,
            "format": keys.VALUE_FORMAT,
            "users": users,
            "tracks": tracks,
            "popular": rows.popular.num_rows,
            "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **{f"source:{table}": v for table, v in rows.table_versions.items()},
        },
    )


def _switch(client: redis.Redis, version: str) -> str | None:
    """Point readers at `version`, keep the one it replaces as previous; return previous."""
    current = _text(client.get(keys.CURRENT))
    with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.CURRENT, version)
        if current is not None and current != version:
            pipe.set(keys.PREVIOUS, current)
        pipe.get(keys.PREVIOUS)
        return _text(pipe.execute()[-1])


def _retire(client: redis.Redis, keep: set[str | None]) -> tuple[str, ...]:
    """Let every version but the current and previous expire."""
    retired = sorted({_text(v) for v in client.smembers(keys.VERSIONS)} - keep)
    with client.pipeline(transaction=False) as pipe:
        for version in retired:
            for key in keys.version_keys(version):
                pipe.expire(key, RETIRED_TTL_S)
            pipe.srem(keys.VERSIONS, version)
        pipe.execute()
    return tuple(retired)


def _is_current(client: redis.Redis, version: str) -> bool:
    return (
        _text(client.get(keys.CURRENT)) == version
        and _manifest(client, version).get("status") == "ready"
    )


def _unchanged(client: redis.Redis, version: str, started: float) -> PublishResult:
    manifest = _manifest(client, version)
    result = PublishResult(
        "unchanged", version, _text(client.get(keys.PREVIOUS)), int(manifest["users"]),
        int(manifest["tracks"]), (), time.perf_counter() - started, 0.0,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


def _manifest(client: redis.Redis, version: str) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in client.hgetall(keys.manifest_key(version)).items()}


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


@contextmanager
def _publish_lock(client: redis.Redis) -> Iterator[Lock]:
    lock = client.lock(keys.PUBLISH_LOCK, timeout=LOCK_TTL_S)
    if not lock.acquire(blocking=False):
        raise PublishError(
            f"another publish or rollback is running (Redis key {keys.PUBLISH_LOCK} is held): "
            "try again when it has finished"
        )
    try:
        yield lock
    finally:
        lock.release()


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise PublishError(f"Redis failed during publish: {exc}") from exc


def erase_user(settings: Settings, user_id: str) -> int:
    """Remove the user's recommendation document from every version in Redis (GDPR erasure);
    returns how many were removed. A later read gets the fallback list, as for a new user."""
    client = redis_client(settings)
    versions = [_text(v) for v in client.smembers(keys.VERSIONS)]
    return sum(client.hdel(keys.users_key(version), user_id) for version in versions)
