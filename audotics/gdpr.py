"""GDPR erasure: remove one user from every store the platform keeps, then record the request.

Stores, and how the user leaves each:
- landing files: the user's lines are removed and the file is rewritten atomically;
- lake tables keyed by the user (silver, features, models, gold): `DELETE` on the user column;
- bronze and quarantine, where the user id sits inside the raw line: those lines are deleted;
- then `VACUUM` with `AUDOTICS_GDPR_VACUUM_RETENTION_HOURS` (default 0) on every table touched,
  so the old Parquet files that still hold the rows are gone too. Time travel to versions before
  the erasure ends there: that is the point;
- the warehouse: every base table with a user column in the dbt schemas and `raw`;
- Redis: the online feature vectors and the published recommendation documents.
The operational database (`app.*`) belongs to the app, which erases its own rows.
The request is recorded in `ops/gdpr_requests` with a SHA-256 of the user id, never the id, and
the lake deletes match on that hash, because delta-rs writes a DELETE's predicate into the log.
Known limit: log entries written before the erasure may hold the id as a file's min/max
statistic until log retention (`delta.logRetentionDuration`, 30 days by default) expires them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field

import click
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from psycopg import sql

from audotics import db, lake
from audotics.errors import AudoticsError
from audotics.ingest.landing import landing_days, landing_files
from audotics.settings import Settings, get_settings

log = logging.getLogger(__name__)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# (layer, table, column holding the user id)
KEYED_TABLES = (
    ("silver", "events", "user_id"),
    ("silver", "users", "user_id"),
    ("silver", "playlists", "owner_user_id"),
    ("features", "user_features", "user_id"),
    ("features", "interactions", "user_id"),
    ("models", "user_factors", "user_id"),
    ("gold", "recommendations", "user_id"),
)
RAW_LINE_TABLES = (("bronze", "events"), ("quarantine", "events"))
USER_COLUMNS = ("user_id", "owner_user_id")
AUDIT = ("ops", "gdpr_requests")


class ErasureError(AudoticsError):
    """An erasure request cannot be carried out; the message says why."""


@dataclass
class ErasureReport:
    request_id: str
    subject_sha256: str
    requested_at: dt.datetime
    removed: dict[str, int] = field(default_factory=dict)  # store -> rows, lines or keys
    vacuumed_files: int = 0


def subject_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def _erase_landing(settings: Settings, user_id: str) -> int:
    needle, removed = user_id.encode(), 0
    files = (f.path for day in landing_days(settings) for f in landing_files(settings, day))
    for path in files:
        lines = gzip.decompress(path.read_bytes()).split(b"\n")
        kept = [line for line in lines if needle not in line]
        if len(kept) < len(lines):
            removed += len(lines) - len(kept)
            temporary = path.with_suffix(".erasing")
            temporary.write_bytes(gzip.compress(b"\n".join(kept)))
            os.replace(temporary, path)  # readers see the old file or the new one, never half
    return removed


def _erase_raw_lines(settings: Settings, layer: str, table: str, user_id: str) -> int:
    """Delete the lines of bronze/quarantine whose raw payload mentions the user."""
    rows = lake.read_arrow(settings, layer, table, columns=["source_file", "line_number", "raw"])
    raw = rows.column("raw")
    if pa.types.is_binary(raw.type):
        raw = raw.cast(pa.string())  # bytes as received; the id is ASCII
    hits = rows.filter(pc.match_substring(raw, user_id)).select(["source_file", "line_number"])
    by_file: dict[str, list[int]] = {}
    for hit in hits.to_pylist():
        by_file.setdefault(hit["source_file"], []).append(hit["line_number"])
    for source_file, numbers in by_file.items():
        quoted = source_file.replace("'", "''")
        lake.delete_rows(
            settings, layer, table,
            f"source_file = '{quoted}' AND line_number IN ({', '.join(map(str, numbers))})",
            metadata={"erasure": "gdpr"},
        )  # fmt: skip
    return hits.num_rows


def _erase_lake(settings: Settings, user_id: str, report: ErasureReport) -> list[tuple[str, str]]:
    touched = []
    playlists: list[str] = []
    if lake.exists(settings, "silver", "playlists"):
        owned = lake.read_arrow(
            settings, "silver", "playlists", columns=["playlist_id"],
            filter=ds.field("owner_user_id") == user_id,
        )  # fmt: skip
        playlists = sorted(set(owned.column("playlist_id").to_pylist()))
    if playlists and lake.exists(settings, "silver", "playlist_tracks"):
        ids = ", ".join(f"'{p}'" for p in playlists)  # UUIDs from our own table
        result = lake.delete_rows(
            settings, "silver", "playlist_tracks", f"playlist_id IN ({ids})",
            metadata={"erasure": "gdpr"},
        )  # fmt: skip
        report.removed["silver/playlist_tracks"] = int(result.get("num_deleted_rows", 0))
        touched.append(("silver", "playlist_tracks"))
    for layer, table, column in KEYED_TABLES:
        if not lake.exists(settings, layer, table):
            continue
        # By hash: the predicate is written into the Delta log, which must not hold the id.
        result = lake.delete_rows(
            settings, layer, table,
            f"encode(sha256({column}), 'hex') = '{report.subject_sha256}'",
            metadata={"erasure": "gdpr"},
        )  # fmt: skip
        report.removed[f"{layer}/{table}"] = int(result.get("num_deleted_rows", 0))
        touched.append((layer, table))
    for layer, table in RAW_LINE_TABLES:
        if lake.exists(settings, layer, table):
            report.removed[f"{layer}/{table}"] = _erase_raw_lines(settings, layer, table, user_id)
            touched.append((layer, table))
    return touched


def _erase_warehouse(settings: Settings, user_id: str) -> int:
    removed = 0
    with db.connect(settings) as conn:
        tables = conn.execute(
            "select c.table_schema, c.table_name, c.column_name "
            "from information_schema.columns c join information_schema.tables t "
            "using (table_schema, table_name) "
            "where t.table_type = 'BASE TABLE' and c.column_name = any(%s) "
            "and c.table_schema not in ('pg_catalog', 'information_schema', 'app')",
            (list(USER_COLUMNS),),
        ).fetchall()
        for schema, table, column in tables:
            cursor = conn.execute(
                sql.SQL("delete from {} where {}::text = %s").format(
                    sql.Identifier(schema, table), sql.Identifier(column)
                ),
                (user_id,),
            )
            removed += cursor.rowcount
        conn.commit()
    return removed


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
    schema = pa.schema(
        [
            ("request_id", pa.string()),
            ("subject_sha256", pa.string()),
            ("requested_at", pa.timestamp("us", tz="UTC")),
            ("completed_at", pa.timestamp("us", tz="UTC")),
            ("removed", pa.string()),
            ("vacuum_retention_hours", pa.int64()),
            ("vacuumed_files", pa.int64()),
        ]
    )
    lake.write_arrow(settings, *AUDIT, pa.Table.from_pylist([row], schema))


def erase_user(settings: Settings, user_id: str, request_id: str | None = None) -> ErasureReport:
    user_id = user_id.strip().lower()
    if not UUID.match(user_id):
        raise ErasureError(f"user id {user_id!r} is not a UUID: nothing was erased")
    from feature_store.online import erase_entities
    from serving.publish import erase_user as erase_published

    report = ErasureReport(
        request_id=request_id or str(uuid.uuid4()),
        subject_sha256=subject_hash(user_id),
        requested_at=dt.datetime.now(dt.UTC),
    )
    report.removed["landing"] = _erase_landing(settings, user_id)
    touched = _erase_lake(settings, user_id, report)
    for layer, table in touched:
        report.vacuumed_files += len(
            lake.vacuum(settings, layer, table, settings.gdpr_vacuum_retention_hours)
        )
    report.removed["warehouse"] = _erase_warehouse(settings, user_id)
    report.removed["redis/features"] = erase_entities(settings, "user", [user_id])
    report.removed["redis/recommendations"] = erase_published(settings, user_id)
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
