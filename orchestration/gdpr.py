"""GDPR erasure: remove one user from every store the platform keeps, as a resumable, audited job.

A request is first queued with the user id (PostgreSQL `gdpr.pending_erasures`, keyed by the
id's SHA-256, holding the one id the remaining steps need), then recorded `pending` in
`ops/gdpr_requests` under the SHA-256, never the id. Nothing is erased before that row exists.
Then `ERASERS` run in order, each marking its step done in the row (`steps_done`) once its store
no longer holds the user, and the request ends `done` and leaves the queue. A crash (even
`kill -9`) leaves the request pending and queued: `audotics gdpr-delete` with the same id, or
the `gdpr_erasure` DAG, reruns the steps not marked done. Every step is idempotent and matches
the user on typed columns or on bytes (`ingestion.erasure.user_pattern`), so no other user's
row, however malformed, can make it fail.

The steps, in the order the user leaves the stores:
- serving, then the online feature store (Redis): the user stops being served first;
- landing files (ingestion): the user's lines removed, each file rewritten atomically;
- lake tables with user columns (every catalog table's `user_columns`, and the
  silver/playlist_tracks rows of the user's playlists): `DELETE` by SHA-256 of the column;
- raw lines: bronze and quarantine rows whose line holds the id, by (file, line number). The
  quarantine lines erased per landing day are recorded, for the warehouse's reconciliation;
- vacuum: `VACUUM` with `AUDOTICS_GDPR_VACUUM_RETENTION_HOURS` (default 0) of every lake table
  with personal data, so the old Parquet files that still hold the rows are gone, then a
  checkpoint and the removal of the log entries before it, whose file statistics (min/max)
  can hold the id. Time travel to versions before the erasure ends there: that is the point;
- the warehouse: every base table with a user column or a raw line in `raw` and the dbt
  schemas, then `VACUUM (ANALYZE)` of them and a `CHECKPOINT` (warehouse.erasure);
- Redis persistence: the serving and online deletes once more (a publish or materialization
  that ran meanwhile from the lake's old rows), then an AOF rewrite, waited for.
The operational database (`app.*`) belongs to the app, which erases its own rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake.fs import DeltaStorageHandler

from audotics import db, lake, locks
from audotics.errors import AudoticsError
from audotics.identifiers import is_uuid
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings, get_settings
from feature_store.online import erase_entities
from ingestion.erasure import GDPR_COMMIT, delete_raw_lines, erase_landing, find_raw_lines
from serving import erasure as serving_erasure
from warehouse import erasure as warehouse_erasure

log = logging.getLogger(__name__)
# Personal data by column, and inside raw landing lines: from the catalog, never a hand-kept list.
USER_COLUMN_TABLES = tuple(table for table in tables.TABLES if table.user_columns)
RAW_LINE_TABLES = tuple(table for table in tables.TABLES if table.raw_lines)
PERSONAL_TABLES = tuple(table for table in tables.TABLES if table.personal)
PENDING, DONE = "pending", "done"
QUEUE = ("gdpr", "pending_erasures")  # schema, table in PostgreSQL
LOCK = "gdpr erasure"  # one erasure at a time: each rewrites the same lake tables
# Test hook: the process kills itself (SIGKILL) right after the work of the step named here,
# before the step is marked done: the worst moment for a crash.
KILL_AFTER_ENV = "AUDOTICS_GDPR_KILL_AFTER"


class ErasureError(AudoticsError):
    """An erasure request cannot be carried out; the message says why."""


def subject_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


@dataclass
class ErasureRequest:
    """One row of ops/gdpr_requests: what has been done so far for one request."""

    request_id: str
    subject_sha256: str
    requested_at: dt.datetime
    vacuum_retention_hours: int
    completed_at: dt.datetime | None = None
    removed: dict[str, int] = field(default_factory=dict)  # store -> rows, lines or keys
    vacuumed_files: int = 0  # old lake data files and log entries deleted
    status: str = PENDING
    steps_done: list[str] = field(default_factory=list)
    quarantine_lines: dict[str, int] = field(default_factory=dict)  # landing date -> lines
    quarantine_erased_at: dt.datetime | None = None

    def row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "subject_sha256": self.subject_sha256,
            "requested_at": self.requested_at,
            "completed_at": self.completed_at,
            "removed": json.dumps(self.removed, sort_keys=True),
            "vacuum_retention_hours": self.vacuum_retention_hours,
            "vacuumed_files": self.vacuumed_files,
            "status": self.status,
            "steps_done": self.steps_done,
            "quarantine_lines": json.dumps(self.quarantine_lines, sort_keys=True),
            "quarantine_erased_at": self.quarantine_erased_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ErasureRequest:
        return cls(
            request_id=row["request_id"],
            subject_sha256=row["subject_sha256"],
            requested_at=row["requested_at"],
            vacuum_retention_hours=row["vacuum_retention_hours"],
            completed_at=row["completed_at"],
            removed=json.loads(row["removed"] or "{}"),
            vacuumed_files=row["vacuumed_files"] or 0,
            # Rows written before requests had a status were written once, when done.
            status=row.get("status") or DONE,
            steps_done=list(row.get("steps_done") or []),
            quarantine_lines=json.loads(row.get("quarantine_lines") or "{}"),
            quarantine_erased_at=row.get("quarantine_erased_at"),
        )


@dataclass
class Erasure:
    """One request while it runs: who is erased, and the request row its steps update."""

    settings: Settings
    user_id: str
    request: ErasureRequest

    def save(self) -> None:
        _save(self.settings, self.request)


@dataclass(frozen=True)
class Eraser:
    name: str
    erase: Callable[[Erasure], dict[str, int]]  # what it removed: store -> rows, lines or keys
    removes_files: bool = False  # its counts are old lake files, not the user's records


# --- the steps ----------------------------------------------------------------------------------


def _owned_playlist_tracks(erasure: Erasure) -> dict[str, int]:
    """silver/playlist_tracks holds no user column: its rows go with the user's playlists. Runs
    before those playlists are deleted from silver/playlists (a rerun finds them again)."""
    settings = erasure.settings
    if not lake.exists(settings, tables.SILVER_PLAYLISTS):
        return {}
    owned = lake.read_arrow(
        settings, tables.SILVER_PLAYLISTS, columns=["playlist_id"],
        filter=ds.field("owner_user_id") == erasure.user_id,
    )  # fmt: skip
    playlists = sorted(set(owned.column("playlist_id").to_pylist()))
    if not playlists or not lake.exists(settings, tables.SILVER_PLAYLIST_TRACKS):
        return {}
    ids = ", ".join(f"'{p}'" for p in playlists if is_uuid(p))  # UUIDs from our own table
    result = lake.delete_rows(
        settings, tables.SILVER_PLAYLIST_TRACKS, f"playlist_id IN ({ids})", metadata=GDPR_COMMIT
    )
    return {tables.SILVER_PLAYLIST_TRACKS.path: int(result.get("num_deleted_rows", 0))}


def _erase_lake_rows(erasure: Erasure) -> dict[str, int]:
    """Every catalog table with user columns: DELETE by the hash of each user column."""
    removed = _owned_playlist_tracks(erasure)
    for table in USER_COLUMN_TABLES:
        if not lake.exists(erasure.settings, table):
            continue
        # By hash: the predicate is written into the Delta log, which must not hold the id.
        predicate = " OR ".join(
            f"encode(sha256({column}), 'hex') = '{erasure.request.subject_sha256}'"
            for column in table.user_columns
        )
        result = lake.delete_rows(erasure.settings, table, predicate, metadata=GDPR_COMMIT)
        removed[table.path] = int(result.get("num_deleted_rows", 0))
    return removed


def _erase_raw_lines(erasure: Erasure) -> dict[str, int]:
    """Bronze and quarantine. The quarantine lines are recorded per landing day before they are
    deleted: a rerun after the delete committed finds none and keeps the record."""
    removed = {}
    for table in RAW_LINE_TABLES:
        lines = find_raw_lines(erasure.settings, table, erasure.user_id)
        if lines and table == tables.QUARANTINE_EVENTS:
            per_day: dict[str, int] = {}
            for (day, _), numbers in lines.items():
                per_day[day.isoformat()] = per_day.get(day.isoformat(), 0) + len(numbers)
            erasure.request.quarantine_lines = per_day
            erasure.request.quarantine_erased_at = dt.datetime.now(dt.UTC)
            erasure.save()
        removed[table.path] = delete_raw_lines(erasure.settings, table, lines)
    return removed


def _vacuum(erasure: Erasure) -> dict[str, int]:
    """Every lake table with personal data, whether this run deleted from it or a crashed one
    did: the old files, then the log entries before a new checkpoint."""
    settings, hours = erasure.settings, erasure.settings.gdpr_vacuum_retention_hours
    return {
        table.path: len(lake.vacuum(settings, table, hours)) + _purge_log(settings, table)
        for table in PERSONAL_TABLES
        if lake.exists(settings, table)
    }


def _purge_log(settings: Settings, table: Table) -> int:
    """Checkpoint the table, then delete the log entries (commits and checkpoints) before it;
    returns how many. Their `add` actions carry each old file's min/max statistics, which can
    be the erased id; the new checkpoint describes only the files left."""
    delta = lake.open_table(settings, table)
    delta.create_checkpoint()
    checkpoint = delta.version()
    storage = pafs.PyFileSystem(
        DeltaStorageHandler(
            lake.table_uri(settings, table), options=settings.storage_options or None
        )
    )
    old = [
        entry.path
        for entry in storage.get_file_info(pafs.FileSelector("_delta_log"))
        if entry.base_name[:20].isdigit() and int(entry.base_name[:20]) < checkpoint
    ]
    for path in old:
        storage.delete_file(path)
    return len(old)


def _one_store(store: str, erase: Callable[[Settings, str], int]) -> Callable[[Erasure], dict]:
    """The eraser of a store that a stage erases with `erase(settings, user_id) -> count`."""
    return lambda erasure: {store: erase(erasure.settings, erasure.user_id)}


def _erase_online_features(settings: Settings, user_id: str) -> int:
    return erase_entities(settings, "user", [user_id])


_erase_serving = _one_store("redis/recommendations", serving_erasure.erase_user)
_erase_online = _one_store("redis/features", _erase_online_features)


def _redis_persistence(erasure: Erasure) -> dict[str, int]:
    removed = _erase_serving(erasure) | _erase_online(erasure)
    return removed | {"redis/rewrites": serving_erasure.rewrite_persistence(erasure.settings)}


ERASERS: tuple[Eraser, ...] = (
    Eraser("serving", _erase_serving),
    Eraser("online features", _erase_online),
    Eraser("landing", _one_store("landing", erase_landing)),
    Eraser("lake tables", _erase_lake_rows),
    Eraser("raw lines", _erase_raw_lines),
    Eraser("vacuum", _vacuum, removes_files=True),
    Eraser("warehouse", _one_store("warehouse", warehouse_erasure.erase_user)),
    Eraser("redis persistence", _redis_persistence),
)


# --- the request row and the queue ---------------------------------------------------------------


def _save(settings: Settings, request: ErasureRequest) -> None:
    """Write the request's row, replacing its earlier version (one commit)."""
    audit = tables.GDPR_REQUESTS
    data = pa.Table.from_pylist([request.row()], audit.schema)
    if not lake.exists(settings, audit):
        lake.write_arrow(settings, audit, data, metadata=GDPR_COMMIT)
        return
    lake.write_arrow(
        settings, audit, data, mode="overwrite", metadata=GDPR_COMMIT,
        predicate=f"request_id = '{request.request_id}'",  # a UUID: checked where it is made
        schema_mode="merge",  # a table written before the status columns existed
    )  # fmt: skip


def load_request(settings: Settings, request_id: str) -> ErasureRequest | None:
    if not lake.exists(settings, tables.GDPR_REQUESTS):
        return None
    rows = lake.read_arrow(
        settings, tables.GDPR_REQUESTS, filter=ds.field("request_id") == request_id
    ).to_pylist()
    return ErasureRequest.from_row(rows[0]) if rows else None


def _queue_sql(statement: str) -> str:
    return statement.format(queue='"{}"."{}"'.format(*QUEUE), schema=f'"{QUEUE[0]}"')


def _queue(settings: Settings, subject_sha256: str, user_id: str, request_id: str) -> str:
    """Queue the user's erasure; returns the request id (that of a request already queued)."""
    with db.connect(settings) as conn:
        conn.execute(_queue_sql("create schema if not exists {schema}"))
        conn.execute(
            _queue_sql(
                "create table if not exists {queue} (subject_sha256 text primary key, "
                "subject_id text not null, request_id text not null, "
                "queued_at timestamptz not null default now())"
            )
        )
        conn.execute(
            _queue_sql(
                "insert into {queue} (subject_sha256, subject_id, request_id) "
                "values (%s, %s, %s) on conflict (subject_sha256) do nothing"
            ),
            (subject_sha256, user_id, request_id),
        )
        (queued,) = conn.execute(
            _queue_sql("select request_id from {queue} where subject_sha256 = %s"),
            (subject_sha256,),
        ).fetchone()
    return queued


def queued_requests(settings: Settings) -> list[str]:
    """The request ids of every queued erasure (pending, or not yet recorded), oldest first."""
    with db.connect(settings) as conn:
        exists = conn.execute("select to_regclass(%s)", (_queue_sql("{queue}"),)).fetchone()[0]
        if exists is None:
            return []
        rows = conn.execute(_queue_sql("select request_id from {queue} order by queued_at"))
        return [request_id for (request_id,) in rows.fetchall()]


def _queued_user(settings: Settings, request_id: str) -> str:
    with db.connect(settings) as conn:
        row = conn.execute(
            _queue_sql("select subject_id from {queue} where request_id = %s"), (request_id,)
        ).fetchone()
    if row is None:
        raise ErasureError(
            f"erasure request {request_id} is not queued (done, or never submitted): its user "
            "id is not held; `audotics gdpr-delete --user-id <id>` erases a user anew"
        )
    return row[0]


def _dequeue(settings: Settings, subject_sha256: str) -> None:
    """The request is done: its id leaves the queue, and the queue's dead tuple is vacuumed."""
    with db.connect(settings) as conn:
        conn.execute(_queue_sql("delete from {queue} where subject_sha256 = %s"), (subject_sha256,))
    warehouse_erasure.vacuum_analyze(settings, [QUEUE])


# --- running a request ---------------------------------------------------------------------------


def _crash_point(step: str) -> None:
    if os.environ.get(KILL_AFTER_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _record_pending(settings: Settings, request_id: str, subject: str) -> ErasureRequest:
    request = ErasureRequest(
        request_id, subject, dt.datetime.now(dt.UTC), settings.gdpr_vacuum_retention_hours
    )
    _save(settings, request)
    return request


def _run(settings: Settings, request_id: str, user_id: str) -> ErasureRequest:
    """Run the steps of a queued request not done yet, mark it done and dequeue it."""
    subject = subject_hash(user_id)
    # Not recorded yet if a crash came between queueing and recording.
    request = load_request(settings, request_id) or _record_pending(settings, request_id, subject)
    if request.subject_sha256 != subject:
        raise ErasureError(f"erasure request {request_id} is for another user: nothing was erased")
    erasure = Erasure(settings, user_id, request)
    for eraser in ERASERS:
        if request.status == DONE or eraser.name in request.steps_done:
            continue
        counts = eraser.erase(erasure)
        _crash_point(eraser.name)
        if eraser.removes_files:
            request.vacuumed_files += sum(counts.values())
        else:
            for store, count in counts.items():
                request.removed[store] = request.removed.get(store, 0) + count
        request.steps_done.append(eraser.name)
        erasure.save()
        log.info("GDPR request %s: %s done %s", request_id, eraser.name, counts)
    if request.status != DONE:
        request.status, request.completed_at = DONE, dt.datetime.now(dt.UTC)
        erasure.save()
    _dequeue(settings, subject)
    log.info("GDPR request %s done: %s", request_id, request.removed)
    return request


def _checked(user_id: str) -> str:
    user_id = user_id.strip().lower()
    if not is_uuid(user_id):
        raise ErasureError(f"user id {user_id!r} is not a UUID: nothing was erased")
    return user_id


def submit(settings: Settings, user_id: str, request_id: str | None = None) -> str:
    """Queue the erasure of `user_id` (for `erase_queued`, the `gdpr_erasure` DAG) and record
    it pending; returns its request id: that of the user's request already queued, if any."""
    user_id = _checked(user_id)
    request_id = request_id or str(uuid.uuid4())
    if not is_uuid(request_id):  # it becomes part of a Delta predicate
        raise ErasureError(f"request id {request_id!r} is not a UUID: nothing was queued")
    subject = subject_hash(user_id)
    request_id = _queue(settings, subject, user_id, request_id)
    if load_request(settings, request_id) is None:
        _record_pending(settings, request_id, subject)
    return request_id


def erase_user(settings: Settings, user_id: str, request_id: str | None = None) -> ErasureRequest:
    """Erase `user_id` from every store now, completing the user's queued request if a crash
    left one; returns the request as recorded."""
    user_id = _checked(user_id)
    with locks.exclusive(settings, LOCK, purpose="audotics gdpr-delete"):
        return _run(settings, submit(settings, user_id, request_id), user_id)


def erase_queued(settings: Settings, request_id: str) -> ErasureRequest:
    """Complete one queued request (the DAG's task): its user id is read from the queue."""
    with locks.exclusive(settings, LOCK, purpose=f"erasure request {request_id}"):
        return _run(settings, request_id, _queued_user(settings, request_id))


@click.command("gdpr-delete")
@click.option("--user-id", "user_ids", multiple=True, required=True, help="Repeat for several.")
@click.option(
    "--queue", "queue_only", is_flag=True,
    help="Only queue the requests (recorded pending) for the gdpr_erasure DAG.",
)  # fmt: skip
def gdpr_delete_command(user_ids: tuple[str, ...], queue_only: bool) -> None:
    """Erase users from every store (lake, warehouse, feature store, Redis) and audit it. A
    rerun completes a request a crash left pending."""
    settings = get_settings()
    for user_id in user_ids:
        if queue_only:
            click.echo(f"{submit(settings, user_id)}: queued")
            continue
        request = erase_user(settings, user_id)
        click.echo(
            f"{request.request_id}: user sha256:{request.subject_sha256[:12]}… erased: "
            + ", ".join(f"{store} {count}" for store, count in request.removed.items() if count)
            + f"; {request.vacuumed_files} old lake files vacuumed"
        )
