"""The operational catalog (PostgreSQL schema `app`) into silver, incrementally, with history.

Each run reads the rows whose `updated_at` is at or after the newest version silver holds (the
watermark) and keeps SCD2 history: a changed row closes its current version (`valid_to`,
`is_current = false`) and adds a new one, in ONE Delta MERGE per table. Re-reading rows at the
watermark is harmless: a version silver already has is skipped. Hard deletes in the app are not
visible to an updated_at extract (that needs CDC); the README says so.

The table catalog (`audotics.lake.tables.SCD2_TABLES`) decides what is extracted: its columns,
cast to its types, then the history columns this module adds. Schema drift in the app is
handled column by column: a declared column the app no longer has stops the extract with a
`CatalogError` naming table and column (silver would lose data); an app column the catalog does
not declare is left out with a logged warning naming it, until someone declares it.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow as pa
import pyarrow.compute as pc

from audotics import db, lake
from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.settings import Settings, mask_secrets

log = logging.getLogger(__name__)
HISTORY_COLUMNS = ("valid_from", "valid_to", "is_current")
MERGE_KEY = "_merge_key"
# Postgres types read through a cast, so the driver hands over values Arrow takes as the
# declared types (text rather than UUID objects, floats rather than Decimals).
CASTS = {"uuid": "text", "real": "double precision", "numeric": "double precision"}


class CatalogError(AudoticsError):
    """The operational database, a catalog table or a declared column is missing or unreadable."""


def app_schema(table: tables.Table) -> pa.Schema:
    """The columns extracted from app.<table>: the catalog schema without the history."""
    return pa.schema(field for field in table.schema if field.name not in HISTORY_COLUMNS)


def _select_list(table: tables.Table, app_columns: dict[str, str]) -> str:
    """The query's columns, in catalog order; checks the app against the catalog."""
    declared = app_schema(table).names
    missing = [name for name in declared if name not in app_columns]
    if missing:
        raise CatalogError(
            f"app.{table.name} has no column {', '.join(missing)} that {table} declares "
            "(audotics.lake.tables): the app schema changed; update the catalog entry"
        )
    undeclared = [name for name in app_columns if name not in declared]
    if undeclared:
        log.warning(
            "schema drift in app.%s: column(s) %s not in the catalog entry of %s, left out",
            table.name, ", ".join(undeclared), table,
        )  # fmt: skip
    return ", ".join(
        f"{name}::{CASTS[app_columns[name]]} as {name}" if app_columns[name] in CASTS else name
        for name in declared
    )


def extract_changes(settings: Settings, table: tables.Table, since: dt.datetime | None) -> pa.Table:
    """Rows of app.<table> with updated_at >= since (all rows when since is None), with the
    catalog's columns and types."""
    with db.connect(settings) as conn:
        conn.execute("set time zone 'UTC'")
        app_columns = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'app' and table_name = %s order by ordinal_position",
                (table.name,),
            ).fetchall()
        )
        if not app_columns:
            raise CatalogError(
                f"table app.{table.name} not found in {mask_secrets(db.libpq_url(settings))}: "
                "has the operational database been created (audotics generate)?"
            )
        query = f"select {_select_list(table, app_columns)} from app.{table.name}"
        params: tuple = ()
        if since is not None:
            query += " where updated_at >= %s"
            params = (since,)
        rows = conn.execute(query + " order by updated_at", params).fetchall()
    schema = app_schema(table)
    try:
        return pa.Table.from_pylist(
            [dict(zip(schema.names, row, strict=True)) for row in rows], schema
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CatalogError(
            f"app.{table.name} does not convert to the types {table} declares: {exc}"
        ) from exc


def _with_history_columns(table: tables.Table, changes: pa.Table) -> pa.Table:
    n = changes.num_rows
    valid_to = table.schema.field("valid_to").type
    return (
        changes.append_column("valid_from", changes.column("updated_at"))
        .append_column("valid_to", pa.nulls(n, valid_to))
        .append_column("is_current", pa.array([True] * n, pa.bool_()))
        .cast(table.schema)
    )


def _new_versions(settings: Settings, table: tables.Table, versions: pa.Table) -> pa.Table:
    """Drop the versions silver already holds (same keys and valid_from)."""
    if not lake.exists(settings, table) or versions.num_rows == 0:
        return versions
    key_columns = [*table.keys, "valid_from"]
    held = lake.read_arrow(settings, table, columns=key_columns)
    seen = versions.select(key_columns).join(
        held.append_column("_held", pa.array([True] * held.num_rows)),
        key_columns,
        join_type="left outer",
    )
    # join() reorders rows, so match back on the key columns rather than by position.
    fresh = seen.filter(pc.is_null(seen.column("_held"))).select(key_columns)
    return versions.join(fresh, key_columns, join_type="inner").select(versions.column_names)


def merge_scd2(settings: Settings, table: tables.Table, changes: pa.Table, run_id: str) -> int:
    """Apply new versions as SCD2 in one commit; returns how many versions were added."""
    versions = _new_versions(settings, table, _with_history_columns(table, changes))
    if versions.num_rows == 0:
        return 0
    metadata = {"run_id": run_id, "step": "extract_catalog", "table": table.name}
    if not lake.exists(settings, table):
        lake.write_arrow(settings, table, versions, metadata=metadata)
        return versions.num_rows
    key = pc.binary_join_element_wise(*[versions.column(k) for k in table.keys], "|")
    # The classic single-MERGE SCD2: each new version appears twice in the source, once keyed
    # (closes the current row) and once with a null key (always inserted).
    closing = versions.append_column(MERGE_KEY, key)
    inserting = versions.append_column(MERGE_KEY, pa.nulls(versions.num_rows, pa.string()))
    source = pa.concat_tables([closing, inserting])
    target_key = " || '|' || ".join(f"t.{k}" for k in table.keys)
    (
        lake.open_table(settings, table)
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


def watermark(settings: Settings, table: tables.Table) -> dt.datetime | None:
    if not lake.exists(settings, table):
        return None
    held = lake.read_arrow(settings, table, columns=["valid_from"])
    return pc.max(held.column("valid_from")).as_py() if held.num_rows else None


def extract_catalog(settings: Settings, run_id: str) -> dict[str, int]:
    """Bring every SCD2 table of the catalog up to date; returns new versions per table name."""
    added = {}
    for table in tables.SCD2_TABLES:
        changes = extract_changes(settings, table, watermark(settings, table))
        added[table.name] = merge_scd2(settings, table, changes, run_id)
        log.info("%s: %d rows read, %d new versions", table, changes.num_rows, added[table.name])
    return added
