"""Loading the lake into the warehouse: the lake tables the dbt models read (`SOURCES`), copied
into PostgreSQL schema `raw`.

Loading is incremental and idempotent. `raw._load_state` keeps, per table, the Delta version
last copied and a fingerprint of each partition's files: an unchanged table is skipped, a
partitioned table reloads only the partitions whose files changed (delete + COPY), an
unpartitioned one (the small SCD2 catalog, runs, registry) is replaced. Each table is loaded in
one transaction, so dbt sees a table either before or after a load, never half of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable
from psycopg import sql

from audotics import db, lake
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings
from warehouse.errors import WarehouseError
from warehouse.postgres_copy import copy_batches, postgres_type

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
STATE_TABLE = "_load_state"
LOADED_AT = "_loaded_at"
COPY_BATCH_ROWS = 65_536
# One loader at a time: a second waits instead of interleaving its deletes and copies.
LOAD_LOCK_KEY = 0x617564_6F7469  # "audoti"
ABSENT_VERSION = -1  # the load state of an optional lake table that does not exist yet


@dataclass(frozen=True)
class LakeSource:
    """A lake table the warehouse needs and the `raw` table it is copied to."""

    table: Table
    raw_table: str
    # Absent until its first write (the erasure audit before the first request): loaded as an
    # empty table of its catalog schema, so the models over it build from the start.
    optional: bool = False


SOURCES: tuple[LakeSource, ...] = (
    LakeSource(tables.SILVER_EVENTS, "events"),
    LakeSource(tables.SILVER_USERS, "users"),
    LakeSource(tables.SILVER_TRACKS, "tracks"),
    LakeSource(tables.SILVER_ARTISTS, "artists"),
    LakeSource(tables.SILVER_PLAYLISTS, "playlists"),
    LakeSource(tables.SILVER_PLAYLIST_TRACKS, "playlist_tracks"),
    LakeSource(tables.QUARANTINE_EVENTS, "quarantine_events"),
    LakeSource(tables.INGEST_RUNS, "ingest_runs"),
    LakeSource(tables.MODEL_REGISTRY, "model_registry"),
    LakeSource(tables.RECOMMENDATIONS, "recommendations"),
    # Absent until the first experiment; its arms and plan drive mart_experiment_results.
    LakeSource(tables.EXPERIMENTS, "experiments", optional=True),
    # The reconciliation of quarantine with ingest runs accounts for the lines erased since.
    LakeSource(tables.GDPR_REQUESTS, "gdpr_requests", optional=True),
)


@dataclass(frozen=True)
class TableLoad:
    """What one load did to one raw table."""

    source: LakeSource
    delta_version: int
    previous_version: int | None
    mode: Literal["unchanged", "partitions", "replaced"]
    rows_loaded: int = 0
    partitions_loaded: tuple[str, ...] = ()
    partitions_removed: tuple[str, ...] = ()

    def line(self) -> str:
        detail = ""
        if self.mode == "partitions":
            detail = f" partitions reloaded={list(self.partitions_loaded)}"
            if self.partitions_removed:
                detail += f" removed={list(self.partitions_removed)}"
        return (
            f"{RAW_SCHEMA}.{self.source.raw_table:<18} <- {self.source.table.path:<22} "
            f"v{self.previous_version}->v{self.delta_version} {self.mode:<10} "
            f"rows={self.rows_loaded}{detail}"
        )


@dataclass(frozen=True)
class LoadReport:
    tables: tuple[TableLoad, ...]

    @property
    def rows_loaded(self) -> int:
        return sum(t.rows_loaded for t in self.tables)

    def table(self, raw_table: str) -> TableLoad:
        return next(t for t in self.tables if t.source.raw_table == raw_table)

    def as_dict(self) -> dict[str, Any]:
        return {
            t.source.raw_table: {
                "delta_version": t.delta_version,
                "mode": t.mode,
                "rows_loaded": t.rows_loaded,
                "partitions_loaded": list(t.partitions_loaded),
            }
            for t in self.tables
        }


def _raw(raw_table: str) -> sql.Identifier:
    return sql.Identifier(RAW_SCHEMA, raw_table)


# --- load state --------------------------------------------------------------------------------


@dataclass
class LoadState:
    delta_version: int
    partitions: dict[str, str] = field(default_factory=dict)  # partition key -> files digest


def _ensure_schema(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(RAW_SCHEMA)))
    conn.execute(
        sql.SQL(
            """create table if not exists {} (
                table_name text primary key,
                lake_table text not null,
                delta_version bigint not null,
                partitions jsonb not null default '{{}}'::jsonb,
                rows_loaded bigint not null,
                loaded_at timestamptz not null default now()
            )"""
        ).format(_raw(STATE_TABLE))
    )
    conn.execute(
        sql.SQL("comment on table {} is {}").format(
            _raw(STATE_TABLE),
            sql.Literal(
                "Watermarks of the lake-to-warehouse load: per raw table, the Delta version "
                "last copied and a digest of each partition's files."
            ),
        )
    )


def _read_state(conn: psycopg.Connection, raw_table: str) -> LoadState | None:
    row = conn.execute(
        sql.SQL("select delta_version, partitions from {} where table_name = %s").format(
            _raw(STATE_TABLE)
        ),
        (raw_table,),
    ).fetchone()
    return LoadState(row[0], row[1]) if row else None


def _write_state(
    conn: psycopg.Connection, source: LakeSource, state: LoadState, rows_loaded: int
) -> None:
    conn.execute(
        sql.SQL(
            """insert into {} (table_name, lake_table, delta_version, partitions, rows_loaded)
            values (%s, %s, %s, %s, %s)
            on conflict (table_name) do update set
                lake_table = excluded.lake_table, delta_version = excluded.delta_version,
                partitions = excluded.partitions, rows_loaded = excluded.rows_loaded,
                loaded_at = now()"""
        ).format(_raw(STATE_TABLE)),
        (
            source.raw_table,
            source.table.path,
            state.delta_version,
            json.dumps(state.partitions),
            rows_loaded,
        ),
    )


# --- raw tables --------------------------------------------------------------------------------


def _existing_columns(conn: psycopg.Connection, raw_table: str) -> dict[str, str]:
    rows = conn.execute(
        """select a.attname, format_type(a.atttypid, a.atttypmod)
        from pg_attribute a
        where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped""",
        (f'"{RAW_SCHEMA}"."{raw_table}"',),
    ).fetchall()
    return dict(rows)


def _prepare_table(
    conn: psycopg.Connection,
    source: LakeSource,
    columns: dict[str, str],
    partition_columns: Sequence[str],
) -> bool:
    """Create the raw table, or add the lake's new columns to it. True if it was (re)created."""
    existing = _existing_columns(conn, source.raw_table)
    name = _raw(source.raw_table)
    if not existing:
        definitions = [
            sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))
            for column, pg_type in columns.items()
        ]
        definitions.append(
            sql.SQL("{} timestamptz not null default now()").format(sql.Identifier(LOADED_AT))
        )
        conn.execute(sql.SQL("create table {} ({})").format(name, sql.SQL(", ").join(definitions)))
        if partition_columns:
            conn.execute(
                sql.SQL("create index on {} ({})").format(
                    name, sql.SQL(", ").join(map(sql.Identifier, partition_columns))
                )
            )
        conn.execute(
            sql.SQL("comment on table {} is {}").format(
                name, sql.Literal(f"Copy of lake table {source.table}, loaded by audotics.")
            )
        )
        return True
    for column, pg_type in columns.items():
        if column not in existing:  # an additive schema change in the lake
            log.info("raw.%s: adding column %s %s", source.raw_table, column, pg_type)
            conn.execute(
                sql.SQL("alter table {} add column {} {}").format(
                    name, sql.Identifier(column), sql.SQL(pg_type)
                )
            )
        elif existing[column] != pg_type:
            raise WarehouseError(
                f"raw.{source.raw_table}.{column} is {existing[column]} in the warehouse but "
                f"{pg_type} in lake table {source.table}: rebuild the raw tables with "
                "`audotics warehouse load --full-refresh` (dbt rebuilds what depends on them)"
            )
    return False


def _drop_table(conn: psycopg.Connection, raw_table: str) -> None:
    # CASCADE: dbt's staging views over the table go too; the next dbt build recreates them.
    conn.execute(sql.SQL("drop table if exists {} cascade").format(_raw(raw_table)))
    conn.execute(
        sql.SQL("delete from {} where table_name = %s").format(_raw(STATE_TABLE)), (raw_table,)
    )


# --- partitions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    values: tuple[Any, ...]  # typed partition values, in partition-column order
    digest: str  # of the partition's data files: any rewrite changes it

    @property
    def key(self) -> str:
        return "/".join("null" if v is None else str(v) for v in self.values)


def partitions_of(table: DeltaTable, partition_columns: Sequence[str]) -> dict[str, Partition]:
    """The table's partitions with a digest of the files each holds at this version."""
    actions = pa.table(table.get_add_actions(flatten=True))
    files: dict[tuple[Any, ...], list[str]] = {}
    values = zip(
        *(actions.column(f"partition.{c}").to_pylist() for c in partition_columns), strict=True
    )
    for path, partition in zip(actions.column("path").to_pylist(), values, strict=True):
        files.setdefault(partition, []).append(path)
    partitions = {}
    for partition_values, paths in files.items():
        digest = hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()
        partition = Partition(partition_values, digest)
        partitions[partition.key] = partition
    return partitions


def _partition_filter(
    partition_columns: Sequence[str], partitions: Iterable[Partition]
) -> ds.Expression:
    def equals(column: str, value: Any) -> ds.Expression:
        return ds.field(column).is_null() if value is None else ds.field(column) == value

    expression = None
    for partition in partitions:
        match = None
        for column, value in zip(partition_columns, partition.values, strict=True):
            match = equals(column, value) if match is None else match & equals(column, value)
        expression = match if expression is None else expression | match
    return expression


def _delete_partitions(
    conn: psycopg.Connection,
    raw_table: str,
    partition_columns: Sequence[str],
    partitions: Iterable[tuple[Any, ...]],
) -> None:
    for values in partitions:
        # `=` rather than `is not distinct from`, so the partition index is used.
        condition = sql.SQL(" and ").join(
            sql.SQL("{} is null" if value is None else "{} = %s").format(sql.Identifier(column))
            for column, value in zip(partition_columns, values, strict=True)
        )
        conn.execute(
            sql.SQL("delete from {} where {}").format(_raw(raw_table), condition),
            [value for value in values if value is not None],
        )


def _parse_key(key: str, partition_columns: Sequence[str], schema: pa.Schema) -> tuple[Any, ...]:
    """A stored partition key back to typed values (for deleting a partition gone from the lake)."""
    parts = key.split("/")
    return tuple(
        None if text == "null" else pa.scalar(text).cast(schema.field(column).type).as_py()
        for column, text in zip(partition_columns, parts, strict=True)
    )


# --- the load ----------------------------------------------------------------------------------


def _batches(dataset: ds.Dataset, columns: Sequence[str], filter: Any = None) -> Iterator:
    return dataset.to_batches(columns=list(columns), filter=filter, batch_size=COPY_BATCH_ROWS)


def load_table(
    conn: psycopg.Connection, settings: Settings, source: LakeSource, *, full_refresh: bool
) -> TableLoad:
    """Copy what changed in one lake table since the last load, in one transaction."""
    if source.optional and not lake.exists(settings, source.table):
        return _load_absent(conn, source)
    delta = lake.open_table(settings, source.table)
    version = delta.version()
    with conn.transaction():
        if full_refresh:
            _drop_table(conn, source.raw_table)
        state = _read_state(conn, source.raw_table)
        previous = state.delta_version if state else None
        # (A raw table dropped by hand since is loaded again, whatever the state says.)
        if state and state.delta_version == version and _existing_columns(conn, source.raw_table):
            return TableLoad(source, version, previous, "unchanged")

        # The version opened above, so files, partitions and digests describe one snapshot.
        dataset = lake.dataset(settings, source.table, version=version)
        schema = dataset.schema
        columns = {f.name: postgres_type(f.type, f"{source.table}.{f.name}") for f in schema}
        # The lake's own partitioning (the catalog's applies only to tables created since).
        partition_columns = list(delta.metadata().partition_columns)
        created = _prepare_table(conn, source, columns, partition_columns)
        target = _raw(source.raw_table)

        if not partition_columns:
            conn.execute(sql.SQL("delete from {}").format(target))
            rows = copy_batches(conn, target, list(columns), _batches(dataset, columns))
            _write_state(conn, source, LoadState(version), rows)
            return TableLoad(source, version, previous, "replaced", rows)

        current = partitions_of(delta, partition_columns)
        known = {} if created or state is None else state.partitions
        changed = [p for key, p in current.items() if known.get(key) != p.digest]
        removed = sorted(set(known) - set(current))
        _delete_partitions(
            conn,
            source.raw_table,
            partition_columns,
            [p.values for p in changed]
            + [_parse_key(k, partition_columns, schema) for k in removed],
        )
        rows = 0
        if changed:
            batches = _batches(dataset, columns, _partition_filter(partition_columns, changed))
            rows = copy_batches(conn, target, list(columns), batches)
        digests = {key: p.digest for key, p in current.items()}
        _write_state(conn, source, LoadState(version, digests), rows)
        return TableLoad(
            source,
            version,
            previous,
            "partitions",
            rows,
            tuple(sorted(p.key for p in changed)),
            tuple(removed),
        )


def _load_absent(conn: psycopg.Connection, source: LakeSource) -> TableLoad:
    """An optional lake table that does not exist yet: an empty raw table of its schema."""
    schema = source.table.schema
    if schema is None:
        raise WarehouseError(f"optional source {source.table} needs a catalog schema")
    with conn.transaction():
        state = _read_state(conn, source.raw_table)
        unchanged = state and state.delta_version == ABSENT_VERSION
        if unchanged and _existing_columns(conn, source.raw_table):
            return TableLoad(source, ABSENT_VERSION, ABSENT_VERSION, "unchanged")
        columns = {f.name: postgres_type(f.type, f"{source.table}.{f.name}") for f in schema}
        _prepare_table(conn, source, columns, ())
        conn.execute(sql.SQL("delete from {}").format(_raw(source.raw_table)))
        _write_state(conn, source, LoadState(ABSENT_VERSION), 0)
    previous = state.delta_version if state else None
    return TableLoad(source, ABSENT_VERSION, previous, "replaced")


def load_warehouse(
    settings: Settings,
    *,
    sources: Sequence[LakeSource] = SOURCES,
    full_refresh: bool = False,
) -> LoadReport:
    """Bring schema `raw` up to date with the lake tables the warehouse models read.

    Rerunning without lake changes copies nothing. `full_refresh` drops and reloads every raw
    table (needed only after a non-additive schema change in the lake).
    """
    loads = []
    with db.connect(settings) as conn:
        conn.execute("select pg_advisory_lock(%s)", (LOAD_LOCK_KEY,))
        with conn.transaction():
            _ensure_schema(conn)
        for source in sources:
            loads.append(load_table(conn, settings, source, full_refresh=full_refresh))
            log.info(loads[-1].line())
    return LoadReport(tuple(loads))
