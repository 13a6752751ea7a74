"""Named locks that keep runs from colliding, held in PostgreSQL (session advisory locks): the
platform's one server every run can reach, from the CLI, `audotics run` and Airflow's workers
alike. A lock is released when its holder ends, however it ends (even `kill -9`: the server
closes the session), so a crash never leaves a stale lock behind.

A second run waits, saying who holds the lock (the holder's session is named after it), and
after AUDOTICS_LOCK_WAIT_SECONDS refuses with an error naming the holder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from audotics import db
from audotics.errors import AudoticsError
from audotics.settings import Settings

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
APPLICATION = "audotics lock"  # pg_stat_activity.application_name prefix of a holder


class LockTimeout(AudoticsError):
    """A lock stayed held by another run for longer than the wait allowed."""


def lock_key(name: str) -> int:
    """The advisory lock key of a name: a stable signed 64-bit integer."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _holder(connection, key: int) -> str:
    """Who holds the lock: the application name of the session that has it."""
    row = connection.execute(
        """SELECT a.application_name, a.backend_start FROM pg_locks l
            JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted
              AND ((l.classid::bigint << 32) | l.objid::bigint) = %s""",
        [key],  # a bigint key is split into classid (high 32 bits) and objid (low 32 bits)
    ).fetchone()
    if row is None:
        return "a run that has just ended"
    name, since = row
    return f"{name or 'an unnamed session'} (since {since:%Y-%m-%d %H:%M:%S %Z})"


@contextmanager
def exclusive(settings: Settings, name: str, *, purpose: str) -> Iterator[None]:
    """Hold lock `name` for the block, waiting up to AUDOTICS_LOCK_WAIT_SECONDS for it.
    `purpose` names this holder for whoever waits (`audotics ingest 2026-11-01`)."""
    key = lock_key(name)
    holder = f"{APPLICATION} {name!r}: {purpose}, pid {os.getpid()} on {socket.gethostname()}"
    connection = db.connect(settings, autocommit=True)
    try:
        connection.execute("SELECT set_config('application_name', %s, false)", [holder[:63]])
        deadline = time.monotonic() + settings.lock_wait_seconds
        waiting = False
        while not connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"lock {name!r} is held by {_holder(connection, key)}; waited "
                    f"AUDOTICS_LOCK_WAIT_SECONDS={settings.lock_wait_seconds:g}s: {purpose} "
                    "did not run"
                )
            if not waiting:
                log.warning("waiting for lock %r, held by %s", name, _holder(connection, key))
                waiting = True
            time.sleep(POLL_SECONDS)
        if waiting:
            log.info("lock %r acquired for %s", name, purpose)
        yield
    finally:
        connection.close()  # ends the session: the server releases its advisory locks
