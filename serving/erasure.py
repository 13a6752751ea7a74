"""GDPR erasure in serving: a user's published recommendation documents out of Redis, and the
server's persistence files rewritten so they no longer hold what was deleted."""

from __future__ import annotations

import time

import redis

from audotics.db import redis_client
from audotics.errors import AudoticsError
from audotics.settings import Settings
from serving import keys

PERSISTENCE_TIMEOUT_SECONDS = 3_600  # a rewrite of a large dataset takes minutes
POLL_SECONDS = 0.1


class PersistenceRewriteError(AudoticsError):
    """Redis did not rewrite its persistence files; the message says why."""


def erase_user(settings: Settings, user_id: str) -> int:
    """Remove the user's recommendation document from every version in Redis; returns how many
    were removed. A later read gets the fallback list, as for a new user."""
    client = redis_client(settings)
    versions = [version.decode() for version in client.smembers(keys.VERSIONS)]
    return sum(client.hdel(keys.users_key(version), user_id) for version in versions)


def rewrite_persistence(settings: Settings) -> int:
    """Rewrite the server's persistence from the current dataset and wait for it; returns the
    number of rewrites (1). A deleted key or field is still in the append-only file (AOF) as
    the command that wrote it, or in the last RDB snapshot, until then.

    With AOF on: BGREWRITEAOF, which replaces the old AOF files. Otherwise BGSAVE, which
    replaces the RDB snapshot. A rewrite already running forked before the deletes, so it is
    waited for and a new one started. Needs BGREWRITEAOF/BGSAVE and INFO, not CONFIG.
    """
    client = redis_client(settings)
    aof = bool(client.info("persistence")["aof_enabled"])
    _wait_idle(client)
    try:
        client.bgrewriteaof() if aof else client.bgsave()
    except redis.ResponseError as exc:
        raise PersistenceRewriteError(
            f"Redis refused {'BGREWRITEAOF' if aof else 'BGSAVE'}: {exc}"
        ) from exc
    info = _wait_idle(client)
    status = info["aof_last_bgrewrite_status" if aof else "rdb_last_bgsave_status"]
    if status != "ok":
        raise PersistenceRewriteError(
            f"Redis {'AOF rewrite' if aof else 'RDB save'} ended with status {status!r}: the "
            "old persistence files may still hold erased data (see the Redis log)"
        )
    return 1


def _wait_idle(client: redis.Redis) -> dict:
    """Wait until no AOF rewrite or RDB save is running or scheduled; returns INFO persistence."""
    deadline = time.monotonic() + PERSISTENCE_TIMEOUT_SECONDS
    busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
    while True:
        info = client.info("persistence")
        if not any(info.get(flag) for flag in busy):
            return info
        if time.monotonic() > deadline:
            raise PersistenceRewriteError(
                f"Redis persistence stayed busy for {PERSISTENCE_TIMEOUT_SECONDS}s: "
                + ", ".join(f"{flag}={info.get(flag)}" for flag in busy)
            )
        time.sleep(POLL_SECONDS)
