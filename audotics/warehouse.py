"""The warehouse: lake tables copied into PostgreSQL schema `raw`, modelled by the dbt project in
`dbt/` (staging, intermediate, marts).

Loading is incremental and idempotent. `raw._load_state` keeps, per table, the Delta version
last copied and a fingerprint of each partition's files: an unchanged table is skipped, a
partitioned table reloads only the partitions whose files changed (delete + COPY), an
unpartitioned one (the small SCD2 catalog, runs, registry) is replaced. Each table is loaded in
one transaction, so dbt sees a table either before or after a load, never half of it.

dbt finds its connection in the committed `dbt/profiles.yml`, which reads `DBT_AUDOTICS_*`
environment variables with the embedded server's defaults; `dbt_env()` derives them from the
settings, and `run_dbt()` / the Airflow DAG pass them on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
from deltalake import DeltaTable
from psycopg import sql
from sqlalchemy.engine import make_url

from audotics import db, lake
from audotics.errors import AudoticsError
from audotics.settings import Settings, get_settings

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
STATE_TABLE = "_load_state"
LOADED_AT = "_loaded_at"
DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
DBT_PROFILE, DBT_TARGET = "audotics", "warehouse"
COPY_BATCH_ROWS = 65_536
# One loader at a time: a second waits instead of interleaving its deletes and copies.
LOAD_LOCK_KEY = 0x617564_6F7469  # "audoti"


class WarehouseError(AudoticsError):
    """A lake table cannot be copied into the warehouse, or dbt failed; the message says which."""


@dataclass(frozen=True)
class LakeSource:
    """A lake table the warehouse needs and the `raw` table it is copied to."""

    layer: str
    table: str
    raw_table: str

    @property
    def lake_name(self) -> str:
        return f"{self.layer}/{self.table}"


SOURCES: tuple[LakeSource, ...] = (
    LakeSource("silver", "events", "events"),
    LakeSource("silver", "users", "users"),
    LakeSource("silver", "tracks", "tracks"),
    LakeSource("silver", "artists", "artists"),
    LakeSource("silver", "playlists", "playlists"),
    LakeSource("silver", "playlist_tracks", "playlist_tracks"),
    LakeSource("quarantine", "events", "quarantine_events"),
    LakeSource("ops", "ingest_runs", "ingest_runs"),
    LakeSource("models", "registry", "model_registry"),
    LakeSource("gold", "recommendations", "recommendations"),
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
            f"{RAW_SCHEMA}.{self.source.raw_table:<18} <- {self.source.lake_name:<22} "
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


# --- Arrow to PostgreSQL ------------------------------------------------------------------------


def postgres_type(arrow_type: pa.DataType, column: str) -> str:
    """The PostgreSQL type (as `format_type` spells it) a lake column is copied to."""
    if pa.types.is_dictionary(arrow_type):
        return postgres_type(arrow_type.value_type, column)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        element = postgres_type(arrow_type.value_type, column)
        if element.endswith("[]"):
            raise WarehouseError(f"column {column}: nested lists ({arrow_type}) are not supported")
        return f"{element}[]"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp without time zone"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    simple = {
        pa.string(): "text",
        pa.large_string(): "text",
        pa.string_view(): "text",
        pa.bool_(): "boolean",
        pa.int8(): "smallint",
        pa.int16(): "smallint",
        pa.uint8(): "smallint",
        pa.int32(): "integer",
        pa.uint16(): "integer",
        pa.int64(): "bigint",
        pa.uint32(): "bigint",
        pa.float16(): "real",
        pa.float32(): "real",
        pa.float64(): "double precision",
        pa.date32(): "date",
        pa.date64(): "date",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    raise WarehouseError(f"column {column}: Arrow type {arrow_type} has no warehouse mapping")


def _array_literals(column: pa.Array) -> pa.Array:
    """A list column as PostgreSQL array literals ('{"a","b"}'), which COPY's CSV parser reads."""
    elements = pc.cast(column.values, pa.string())
    escaped = pc.replace_substring(pc.replace_substring(elements, "\\", "\\\\"), '"', '\\"')
    quoted = pc.if_else(
        pc.is_null(elements), "NULL", pc.binary_join_element_wise('"', escaped, '"', "")
    )
    lists = type(column).from_arrays(column.offsets, quoted, mask=column.is_null())
    return pc.binary_join_element_wise("{", pc.binary_join(lists, ","), "}", "")


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Turn the columns Arrow's CSV writer cannot write (lists, dictionaries) into text."""
    columns = []
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = _array_literals(column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def copy_batches(
    conn: psycopg.Connection,
    raw_table: str,
    columns: Sequence[str],
    batches: Iterable[pa.RecordBatch],
) -> int:
    """Bulk COPY Arrow batches into raw_table (as CSV, which Arrow writes in C++); returns rows."""
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        sql.Identifier(RAW_SCHEMA, raw_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    options = pa_csv.WriteOptions(include_header=False)
    rows = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(_csv_ready(batch), sink, write_options=options)
            copy.write(memoryview(sink.getvalue()))
            rows += batch.num_rows
    return rows


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
        ).format(sql.Identifier(RAW_SCHEMA, STATE_TABLE))
    )
    conn.execute(
        sql.SQL("comment on table {} is {}").format(
            sql.Identifier(RAW_SCHEMA, STATE_TABLE),
            sql.Literal(
                "Watermarks of the lake-to-warehouse load: per raw table, the Delta version "
                "last copied and a digest of each partition's files."
            ),
        )
    )


def _read_state(conn: psycopg.Connection, raw_table: str) -> LoadState | None:
    row = conn.execute(
        sql.SQL("select delta_version, partitions from {} where table_name = %s").format(
            sql.Identifier(RAW_SCHEMA, STATE_TABLE)
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
        ).format(sql.Identifier(RAW_SCHEMA, STATE_TABLE)),
        (
            source.raw_table,
            source.lake_name,
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
    name = sql.Identifier(RAW_SCHEMA, source.raw_table)
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
                name, sql.Literal(f"Copy of lake table {source.lake_name}, loaded by audotics.")
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
                f"{pg_type} in lake table {source.lake_name}: rebuild the raw tables with "
                "`audotics warehouse load --full-refresh` (dbt rebuilds what depends on them)"
            )
    return False


def _drop_table(conn: psycopg.Connection, raw_table: str) -> None:
    # CASCADE: dbt's staging views over the table go too; the next dbt build recreates them.
    conn.execute(
        sql.SQL("drop table if exists {} cascade").format(sql.Identifier(RAW_SCHEMA, raw_table))
    )
    conn.execute(
        sql.SQL("delete from {} where table_name = %s").format(
            sql.Identifier(RAW_SCHEMA, STATE_TABLE)
        ),
        (raw_table,),
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
            sql.SQL("delete from {} where {}").format(
                sql.Identifier(RAW_SCHEMA, raw_table), condition
            ),
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
    table = lake.open_table(settings, source.layer, source.table)
    version = table.version()
    with conn.transaction():
        if full_refresh:
            _drop_table(conn, source.raw_table)
        state = _read_state(conn, source.raw_table)
        previous = state.delta_version if state else None
        # (A raw table dropped by hand since is loaded again, whatever the state says.)
        if state and state.delta_version == version and _existing_columns(conn, source.raw_table):
            return TableLoad(source, version, previous, "unchanged")

        dataset = table.to_pyarrow_dataset()
        schema = dataset.schema
        columns = {f.name: postgres_type(f.type, f"{source.lake_name}.{f.name}") for f in schema}
        partition_columns = list(table.metadata().partition_columns)
        created = _prepare_table(conn, source, columns, partition_columns)
        name = sql.Identifier(RAW_SCHEMA, source.raw_table)

        if not partition_columns:
            conn.execute(sql.SQL("delete from {}").format(name))
            rows = copy_batches(conn, source.raw_table, list(columns), _batches(dataset, columns))
            _write_state(conn, source, LoadState(version), rows)
            return TableLoad(source, version, previous, "replaced", rows)

        current = partitions_of(table, partition_columns)
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
            rows = copy_batches(conn, source.raw_table, list(columns), batches)
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


# --- dbt ---------------------------------------------------------------------------------------


def dbt_env(settings: Settings) -> dict[str, str]:
    """The variables `dbt/profiles.yml` reads, for the warehouse of these settings."""
    url = make_url(settings.postgres_url)
    env = {
        "DBT_AUDOTICS_HOST": url.host or "127.0.0.1",
        "DBT_AUDOTICS_PORT": str(url.port or 5432),
        "DBT_AUDOTICS_USER": url.username or "",
        "DBT_AUDOTICS_DBNAME": url.database or "",
    }
    if url.password:  # dbt scrubs DBT_ENV_SECRET_* values from its logs
        env["DBT_ENV_SECRET_AUDOTICS_PASSWORD"] = url.password
    return env


def dbt_target_dir(settings: Settings) -> Path:
    """Where run_dbt keeps dbt's artifacts (manifest, run results, docs): under the state folder,
    so each platform instance has its own."""
    return settings.state_dir / "dbt" / "target"


def dbt_executable() -> str:
    """The dbt next to the running Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


@dataclass(frozen=True)
class DbtInvocation:
    args: tuple[str, ...]
    returncode: int
    output: str
    results: tuple[dict[str, Any], ...]  # run_results.json (or sources.json for freshness)

    def by_name(self) -> dict[str, dict[str, Any]]:
        """Results keyed by node name (`fct_listening_events`, `source:lake.events`, ...)."""
        named = {}
        for result in self.results:
            unique_id = result["unique_id"]
            parts = unique_id.split(".")
            name = f"source:{parts[-2]}.{parts[-1]}" if parts[0] == "source" else parts[-1]
            named[name] = result
        return named


def _read_results(target: Path) -> tuple[dict[str, Any], ...]:
    for artifact in ("run_results.json", "sources.json"):
        path = target / artifact
        if path.exists():
            return tuple(json.loads(path.read_text())["results"])
    return ()


def _failures(results: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{r['unique_id']} {r['status']}: {(r.get('message') or '').strip()}"
        for r in results
        if r["status"] in ("error", "fail", "runtime error")
    ]


def run_dbt(
    settings: Settings, args: Sequence[str], *, echo: bool = False, check: bool = True
) -> DbtInvocation:
    """Run the venv's dbt on the project against the settings' warehouse.

    Artifacts go to `dbt_target_dir(settings)`. With `check`, a failing command raises
    WarehouseError naming the failed nodes; `echo` streams dbt's output as it runs.
    """
    target = dbt_target_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    for artifact in ("run_results.json", "sources.json"):
        (target / artifact).unlink(missing_ok=True)
    env = {
        **os.environ,
        **dbt_env(settings),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target.parent / "logs"),
    }
    command = [dbt_executable(), *args]
    lines = []
    with subprocess.Popen(
        command,
        cwd=DBT_PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if echo:
                click.echo(line, nl=False)
    invocation = DbtInvocation(
        tuple(args), process.returncode, "".join(lines), _read_results(target)
    )
    if check and invocation.returncode != 0:
        failures = _failures(invocation.results) or [invocation.output[-3000:]]
        raise WarehouseError(
            f"`dbt {' '.join(args)}` failed (exit {invocation.returncode}): " + "; ".join(failures)
        )
    return invocation


def build_warehouse(
    settings: Settings, *, full_refresh: bool = False, echo: bool = False
) -> tuple[LoadReport, DbtInvocation]:
    """The warehouse stage of the nightly pipeline: load what changed, then `dbt build` (every
    model and test; raises WarehouseError naming the failures)."""
    report = load_warehouse(settings, full_refresh=full_refresh)
    build = ["build", "--full-refresh"] if full_refresh else ["build"]
    return report, run_dbt(settings, build, echo=echo)


# --- CLI ---------------------------------------------------------------------------------------


@click.group("warehouse")
def warehouse_group() -> None:
    """The PostgreSQL warehouse: load lake tables into schema raw, run the dbt project."""


@warehouse_group.command("load")
@click.option(
    "--full-refresh", is_flag=True, help="Drop and reload every raw table (schema changes)."
)
def load_command(full_refresh: bool) -> None:
    """Copy what changed in the lake into schema raw (incremental, idempotent)."""
    report = load_warehouse(get_settings(), full_refresh=full_refresh)
    for table in report.tables:
        click.echo(table.line())
    click.echo(f"{report.rows_loaded} rows loaded")


@warehouse_group.command("build")
@click.option("--full-refresh", is_flag=True, help="Reload raw and rebuild incremental models.")
def build_command(full_refresh: bool) -> None:
    """Load what changed, then dbt build (models and tests) against the warehouse."""
    report, _ = build_warehouse(get_settings(), full_refresh=full_refresh, echo=True)
    click.echo(f"loaded {report.rows_loaded} rows; dbt build passed")


@warehouse_group.command(
    "dbt", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt_command(args: tuple[str, ...]) -> None:
    """Run dbt on the project against the configured warehouse, e.g. `dbt build`."""
    invocation = run_dbt(get_settings(), args or ("build",), echo=True, check=False)
    sys.exit(invocation.returncode)


@click.command("dbt-profile")
def dbt_profile_command() -> None:
    """Print shell exports that point plain `dbt` at the configured warehouse:
    eval "$(audotics dbt-profile)"."""
    settings = get_settings()
    click.echo("# dbt connection for the current AUDOTICS settings (read by dbt/profiles.yml)")
    click.echo(f"export DBT_PROFILES_DIR={shlex.quote(str(DBT_PROJECT_DIR))}")
    for name, value in dbt_env(settings).items():
        click.echo(f"export {name}={shlex.quote(value)}")
