"""Loading a model version into its own Redis keyspace: documents written with pipelined,
non-transactional HSETs, then the key counts verified against the lake before the manifest says
`ready`; and the lock that lets one publisher (or rollback) work at a time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from redis.lock import Lock

from audotics.progress import progress
from serving import keys
from serving.documents import Batch, document, documents, header, iso_time
from serving.errors import PublishError
from serving.lake_rows import VersionRows
from serving.resp import pack

DOCUMENTS_PER_COMMAND = 500  # fields of one HSET
COMMANDS_PER_WRITE = 8  # HSETs sent in one write
LOCK_TTL_S = 60  # renewed at every write: lapses soon if the publisher dies


def load_version(client: redis.Redis, rows: VersionRows, lock: Lock) -> None:
    """Write the version's documents and popular list into its keyspace, then verify them."""
    version = rows.model_version
    # A clean reload: nothing of an earlier, perhaps interrupted, attempt survives.
    client.unlink(*keys.version_keys(version))
    client.sadd(keys.VERSIONS, version)
    client.hset(keys.manifest_key(version), mapping={"status": "loading"})
    # One publish time for every document of the load (and the manifest): they are one list set.
    published_at = dt.datetime.now(dt.UTC)

    def opening(fallback: bool | None) -> str:
        return header(
            version, fallback=fallback, generated_at=rows.generated_at, published_at=published_at
        )

    user_batches = documents(
        rows.recommendations, key="user_id", opening=opening(False),
        batch_groups=DOCUMENTS_PER_COMMAND,
    )  # fmt: skip
    track_batches = documents(
        rows.similar, key="track_id", opening=opening(None), batch_groups=DOCUMENTS_PER_COMMAND
    )
    with progress(f"publish {version}", total=rows.users + rows.tracks, unit="doc") as bar:
        _load_hash(client, keys.users_key(version), user_batches, lock, bar.update)
        _load_hash(client, keys.similar_key(version), track_batches, lock, bar.update)
    client.set(keys.popular_key(version), document(opening(True), rows.popular))
    _verify(client, rows, published_at)


def _load_hash(
    client: redis.Redis, key: str, batches: Iterator[Batch], lock: Lock,
    written: Callable[[int], object],
) -> None:  # fmt: skip
    """One HSET per batch, several HSETs per write (`written` is told each batch's documents).
    The replies of a write are read only after the next write is built and sent, so Redis stores
    one while Python builds the next. (Packed here: redis-py would make a system call per 4 KB
    document.)"""
    connection = client.connection_pool.get_connection()
    try:
        commands: list[bytes] = []
        unread = 0  # replies of the previous write
        for batch in batches:
            fields = [
                part for pair in zip(batch.keys, batch.documents, strict=True) for part in pair
            ]
            commands.append(pack("HSET", key, *fields))
            written(len(batch.keys))
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


def _verify(client: redis.Redis, rows: VersionRows, published_at: dt.datetime) -> None:
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
            "published_at": iso_time(published_at),
            # Absent (not empty) when the registry has no row: /readyz then answers null.
            **({"generated_at": iso_time(rows.generated_at)} if rows.generated_at else {}),
            **{f"source:{table}": v for table, v in rows.table_versions.items()},
        },
    )


@contextmanager
def publish_lock(client: redis.Redis) -> Iterator[Lock]:
    """Held while a publish or rollback works; refused at once (not waited for) if held."""
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
