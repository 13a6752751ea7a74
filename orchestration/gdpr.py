"""GDPR erasure: remove one user from every store the platform keeps, then record the request.

`ERASERS` lists the stores in the order the user leaves them, each eraser returning what it
removed; the stages own the erasers of their stores:
- serving (Redis): the published recommendation documents, first, so the user stops being
  served at once;
- the online feature store (Redis): the user's feature vectors;
- landing files (ingestion): the user's lines are removed and each file rewritten atomically;
- lake tables with user columns (every catalog table's `user_columns`, and the
  silver/playlist_tracks rows of the user's playlists): `DELETE` by SHA-256 of the column;
- bronze and quarantine (ingestion), where the user id sits inside the raw line: those lines;
- then `VACUUM` with `AUDOTICS_GDPR_VACUUM_RETENTION_HOURS` (default 0) on every lake table
  touched, so the old Parquet files that still hold the rows are gone too. Time travel to
  versions before the erasure ends there: that is the point;
- the warehouse: every base table with a user column in the dbt schemas and `raw`.
The operational database (`app.*`) belongs to the app, which erases its own rows.
The request is recorded in `ops/gdpr_requests` with a SHA-256 of the user id, never the id, and
the lake deletes match on that hash, because delta-rs writes a DELETE's predicate into the log.
Known limit: log entries written before the erasure may hold the id as a file's min/max
statistic until log retention (`delta.logRetentionDuration`, 30 days by default) expires them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import click
import pyarrow as pa
import pyarrow.dataset as ds

from audotics import lake
from audotics.errors import AudoticsError
from audotics.identifiers import is_uuid
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings, get_settings
from feature_store.online import erase_entities
from ingestion.erasure import erase_landing, erase_raw_lines
from serving import erasure as serving_erasure
from warehouse import erasure as warehouse_erasure

log = logging.getLogger(__name__)
GDPR_COMMIT = {"erasure": "gdpr"}  # the metadata of every Delta commit an erasure makes
# Personal data by column, and inside raw landing lines: from the catalog, never a hand-kept list.
USER_COLUMN_TABLES = tuple(table for table in tables.TABLES if table.user_columns)
RAW_LINE_TABLES = tuple(table for table in tables.TABLES if table.raw_lines)


class ErasureError(AudoticsError):
    """An erasure request cannot be carried out; the message says why."""


@dataclass
class Erasure:
    """One request while it runs: who is erased, and the lake tables touched (to vacuum)."""

    settings: Settings
    user_id: str
    subject_sha256: str
    touched: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class Eraser:
    name: str
    erase: Callable[[Erasure], dict[str, int]]  # what it removed: store -> rows, lines or keys
    removes_files: bool = False  # its counts are old data files (VACUUM), not the user's records


@dataclass
class ErasureReport:
    request_id: str
    subject_sha256: str
    requested_at: dt.datetime
    removed: dict[str, int] = field(default_factory=dict)  # store -> rows, lines or keys
    vacuumed_files: int = 0


def subject_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def _owned_playlist_tracks(erasure: Erasure) -> dict[str, int]:
    """silver/playlist_tracks holds no user column: its rows go with the user's playlists. Runs
    before those playlists are deleted from silver/playlists."""
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
    ids = ", ".join(f"'{p}'" for p in playlists)  # UUIDs from our own table
    result = lake.delete_rows(
        settings, tables.SILVER_PLAYLIST_TRACKS, f"playlist_id IN ({ids})", metadata=GDPR_COMMIT
    )
    erasure.touched.append(tables.SILVER_PLAYLIST_TRACKS)
    return {tables.SILVER_PLAYLIST_TRACKS.path: int(result.get("num_deleted_rows", 0))}


def _erase_lake_rows(erasure: Erasure) -> dict[str, int]:
    """Every catalog table with user columns: DELETE by the hash of each user column."""
    removed = _owned_playlist_tracks(erasure)
    for table in USER_COLUMN_TABLES:
        if not lake.exists(erasure.settings, table):
            continue
        # By hash: the predicate is written into the Delta log, which must not hold the id.
        predicate = " OR ".join(
            f"encode(sha256({column}), 'hex') = '{erasure.subject_sha256}'"
            for column in table.user_columns
        )
        result = lake.delete_rows(erasure.settings, table, predicate, metadata=GDPR_COMMIT)
        removed[table.path] = int(result.get("num_deleted_rows", 0))
        erasure.touched.append(table)
    return removed


def _erase_raw_lines(erasure: Erasure) -> dict[str, int]:
    removed = {}
    for table in RAW_LINE_TABLES:
        if lake.exists(erasure.settings, table):
            removed[table.path] = erase_raw_lines(erasure.settings, table, erasure.user_id)
            erasure.touched.append(table)
    return removed


def _vacuum(erasure: Erasure) -> dict[str, int]:
    hours = erasure.settings.gdpr_vacuum_retention_hours
    return {
        table.path: len(lake.vacuum(erasure.settings, table, hours)) for table in erasure.touched
    }


def _one_store(store: str, erase: Callable[[Settings, str], int]) -> Callable[[Erasure], dict]:
    """The eraser of a store that a stage erases with `erase(settings, user_id) -> count`."""
    return lambda erasure: {store: erase(erasure.settings, erasure.user_id)}


def _erase_online_features(settings: Settings, user_id: str) -> int:
    return erase_entities(settings, "user", [user_id])


ERASERS: tuple[Eraser, ...] = (
    Eraser("serving", _one_store("redis/recommendations", serving_erasure.erase_user)),
    Eraser("online features", _one_store("redis/features", _erase_online_features)),
    Eraser("landing", _one_store("landing", erase_landing)),
    Eraser("lake tables", _erase_lake_rows),
    Eraser("raw lines", _erase_raw_lines),
    Eraser("vacuum", _vacuum, removes_files=True),
    Eraser("warehouse", _one_store("warehouse", warehouse_erasure.erase_user)),
)


def _record(settings: Settings, report: ErasureReport) -> None:
    row = {
        "request_id": report.request_id,
        "subject_sha256": report.subject_sha256,
        "requested_at": report.requested_at,
        "completed_at": dt.datetime.now(dt.UTC),
        "removed": json.dumps(report.removed, sort_keys=True),
        "vacuum_retention_hours": settings.gdpr_vacuum_retention_hours,
        "vacuumed_files": report.vacuumed_files,
    }
    audit = tables.GDPR_REQUESTS
    lake.write_arrow(settings, audit, pa.Table.from_pylist([row], audit.schema))


def erase_user(settings: Settings, user_id: str, request_id: str | None = None) -> ErasureReport:
    user_id = user_id.strip().lower()
    if not is_uuid(user_id):
        raise ErasureError(f"user id {user_id!r} is not a UUID: nothing was erased")
    report = ErasureReport(
        request_id=request_id or str(uuid.uuid4()),
        subject_sha256=subject_hash(user_id),
        requested_at=dt.datetime.now(dt.UTC),
    )
    erasure = Erasure(settings, user_id, report.subject_sha256)
    for eraser in ERASERS:
        counts = eraser.erase(erasure)
        if eraser.removes_files:
            report.vacuumed_files += sum(counts.values())
        else:
            report.removed.update(counts)
    _record(settings, report)
    log.info("GDPR request %s done: %s", report.request_id, report.removed)
    return report


@click.command("gdpr-delete")
@click.option("--user-id", "user_ids", multiple=True, required=True, help="Repeat for several.")
def gdpr_delete_command(user_ids: tuple[str, ...]) -> None:
    """Erase users from every store (lake, warehouse, feature store, Redis) and audit it."""
    settings = get_settings()
    for user_id in user_ids:
        report = erase_user(settings, user_id)
        click.echo(
            f"{report.request_id}: user sha256:{report.subject_sha256[:12]}… erased: "
            + ", ".join(f"{store} {count}" for store, count in report.removed.items() if count)
            + f"; {report.vacuumed_files} old files vacuumed"
        )
