"""The operational catalog (PostgreSQL schema `app`) into silver, incrementally, with history.

Each run reads the rows whose `updated_at` is at or after the newest version silver holds (the
watermark) and keeps SCD2 history: a changed row closes its current version (`valid_to`,
`is_current = false`) and adds a new one, in ONE Delta MERGE per table. Re-reading rows at the
watermark is harmless: a version silver already has is skipped. Hard deletes in the app are not
visible to an updated_at extract (that needs CDC); the README says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from audotics import db, lake
from audotics.errors import AudoticsError
from audotics.settings import Settings

log = logging.getLogger(__name__)
LAYER = "silver"
MERGE_KEY = "_merge_key"


@dataclass(frozen=True)
class CatalogTable:
    name: str
    keys: tuple[str, ...]


CATALOG = (
    CatalogTable("users", ("user_id",)),
    CatalogTable("artists", ("artist_id",)),
    CatalogTable("tracks", ("track_id",)),
    CatalogTable("playlists", ("playlist_id",)),
    CatalogTable("playlist_tracks", ("playlist_id", "track_id")),
)
# Postgres types that Arrow should not infer from Python values.
CASTS = {"uuid": "text", "real": "double precision", "numeric": "double precision"}


class CatalogError(AudoticsError):
    """The operational database or a catalog table is missing or unreadable."""


def _arrow_type(pg_type: str) -> pa.DataType:
    return {
        "timestamp with time zone": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "integer": pa.int64(),
        "bigint": pa.int64(),
        "smallint": pa.int64(),
        "boolean": pa.bool_(),
        "real": pa.float64(),
        "double precision": pa.float64(),
        "numeric": pa.float64(),
    }.get(pg_type, pa.string())


def extract_changes(settings: Settings, table: CatalogTable, since: dt.datetime | None) -> pa.Table:
    """Rows of app.<table> with updated_at >= since (all rows when since is None)."""
    with db.connect(settings) as conn:
        conn.execute("set time zone 'UTC'")
        columns = conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'app' and table_name = %s order by ordinal_position",
            (table.name,),
        ).fetchall()
        if not columns:
            raise CatalogError(
                f"table app.{table.name} not found in {db.libpq_url(settings)}: "
                "has the operational database been created (audotics generate)?"
            )
        select = ", ".join(
            f"{name}::{CASTS[kind]} as {name}" if kind in CASTS else name for name, kind in columns
        )
        query = f"select {select} from app.{table.name}"
        params: tuple = ()
        if since is not None:
            query += " where updated_at >= %s"
            params = (since,)
        rows = conn.execute(query + " order by updated_at", params).fetchall()
    schema = pa.schema([(name, _arrow_type(kind)) for name, kind in columns])
    return pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows], schema)


def _with_history_columns(changes: pa.Table) -> pa.Table:
    n = changes.num_rows
    return (
        changes.append_column("valid_from", changes.column("updated_at"))
        .append_column("valid_to", pa.nulls(n, pa.timestamp("us", tz="UTC")))
        .append_column("is_current", pa.array([True] * n, pa.bool_()))
    )


def _new_versions(settings: Settings, table: CatalogTable, changes: pa.Table) -> pa.Table:
    """Drop the versions silver already holds (same keys and valid_from)."""
    if not lake.exists(settings, LAYER, table.name) or changes.num_rows == 0:
        return changes
    held = lake.read_arrow(settings, LAYER, table.name, columns=[*table.keys, "valid_from"])
    key_columns = [*table.keys, "valid_from"]
    seen = changes.select(key_columns).join(
        held.append_column("_held", pa.array([True] * held.num_rows)),
        key_columns,
        join_type="left outer",
    )
    # join() reorders rows, so match back on the key columns rather than by position.
    fresh = seen.filter(pc.is_null(seen.column("_held"))).select(key_columns)
    return changes.join(fresh, key_columns, join_type="inner").select(changes.column_names)


def merge_scd2(settings: Settings, table: CatalogTable, changes: pa.Table, run_id: str) -> int:
    """Apply new versions as SCD2 in one commit; returns how many versions were added."""
    versions = _new_versions(settings, table, _with_history_columns(changes))
    if versions.num_rows == 0:
        return 0
    metadata = {"run_id": run_id, "step": "extract_catalog", "table": table.name}
    if not lake.exists(settings, LAYER, table.name):
        lake.write_arrow(settings, LAYER, table.name, versions, metadata=metadata)
        return versions.num_rows
    key = pc.binary_join_element_wise(*[versions.column(k) for k in table.keys], "|")
    # The classic single-MERGE SCD2: each new version appears twice in the source, once keyed
    # (closes the current row) and once with a null key (always inserted).
    closing = versions.append_column(MERGE_KEY, key)
    inserting = versions.append_column(MERGE_KEY, pa.nulls(versions.num_rows, pa.string()))
    source = pa.concat_tables([closing, inserting])
    target_key = " || '|' || ".join(f"t.{k}" for k in table.keys)
    (
        lake.open_table(settings, LAYER, table.name)
        .merge(
            source,
            predicate=f"{target_key} = s.{MERGE_KEY} AND t.is_current",
            source_alias="s",
            target_alias="t",
            commit_properties=lake.commit_properties(metadata),
        )
        .when_matched_update(
            updates={"valid_to": "s.valid_from", "is_current": "false"},
            predicate="s.valid_from > t.valid_from",
        )
        .when_not_matched_insert(
            updates={c: f"s.{c}" for c in versions.column_names},
            predicate=f"s.{MERGE_KEY} IS NULL",
        )
        .execute()
    )
    return versions.num_rows


def watermark(settings: Settings, table: CatalogTable) -> dt.datetime | None:
    if not lake.exists(settings, LAYER, table.name):
        return None
    held = lake.read_arrow(settings, LAYER, table.name, columns=["valid_from"])
    return pc.max(held.column("valid_from")).as_py() if held.num_rows else None


def extract_catalog(settings: Settings, run_id: str) -> dict[str, int]:
    """Bring every catalog table up to date; returns new versions per table."""
    added = {}
    for table in CATALOG:
        changes = extract_changes(settings, table, watermark(settings, table))
        added[table.name] = merge_scd2(settings, table, changes, run_id)
        log.info(
            "silver/%s: %d rows read, %d new versions",
            table.name,
            changes.num_rows,
            added[table.name],
        )
    return added


def current_rows(settings: Settings, table: str, columns: Sequence[str]):
    """The current version of each row of a silver catalog table, as pandas."""
    if not lake.exists(settings, LAYER, table):
        raise CatalogError(
            f"silver/{table} does not exist yet: run the catalog extract (extract_catalog) first"
        )
    return lake.read_arrow(
        settings, LAYER, table, columns=list(columns), filter=ds.field("is_current")
    ).to_pandas()
