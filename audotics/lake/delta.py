"""Delta tables at `<lake_root>/<layer>/<table>`, read and written through delta-rs.

This module is the in-process engine (Arrow in, Arrow out), used as `audotics.lake`.
`audotics.lake.spark` gives Spark the same tables: consistent snapshot reads, and atomic commits
of the files Spark writes.
Every write carries commit metadata (who wrote it, for which run) so `history()` explains a
table's versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import TableNotFoundError
from deltalake.fs import DeltaStorageHandler

from audotics.errors import AudoticsError
from audotics.lake.tables import Table
from audotics.settings import Settings

WriteMode = Literal["append", "overwrite"]
# Zstandard at its fastest level: as fast to write as delta-rs's default Snappy, and files
# half the size (bronze's raw lines most), so every later scan reads half the bytes. A raw
# line (bronze, quarantine) is all but unique: a dictionary for it is built only to be dropped.
WRITER_PROPERTIES = WriterProperties(
    compression="ZSTD",
    compression_level=1,
    column_properties={"raw": ColumnProperties(dictionary_enabled=False)},
)


class LakeError(AudoticsError):
    """A lake table is missing or a write was refused; the message names the table."""


def table_uri(settings: Settings, table: Table) -> str:
    return settings.table_uri(table.layer, table.name)


def exists(settings: Settings, table: Table) -> bool:
    return DeltaTable.is_deltatable(
        table_uri(settings, table), storage_options=settings.storage_options or None
    )


def open_table(settings: Settings, table: Table, *, version: int | None = None) -> DeltaTable:
    uri = table_uri(settings, table)
    try:
        return DeltaTable(uri, version=version, storage_options=settings.storage_options or None)
    except TableNotFoundError as exc:
        raise LakeError(
            f"Delta table {table} not found at {uri}: has its producing stage run?"
        ) from exc


def version(settings: Settings, table: Table) -> int | None:
    """The table's current version, or None if it does not exist yet."""
    return open_table(settings, table).version() if exists(settings, table) else None


def dataset(settings: Settings, table: Table, *, version: int | None = None) -> pads.Dataset:
    """The snapshot's files as a PyArrow dataset, read by PyArrow's own Parquet reader.

    Not `DeltaTable.to_pyarrow_dataset()`: its Python-backed filesystem can abort the process
    at interpreter exit ("terminate called without an active exception", delta-rs #2184).
    """
    delta = open_table(settings, table, version=version)
    schema = pa.schema(delta.schema().to_arrow())
    partition_columns = delta.metadata().partition_columns
    uris = delta.file_uris()
    filesystem, root = arrow_filesystem(settings, table_uri(settings, table))
    prefix = len(table_uri(settings, table)) - len(root)
    return pads.dataset(
        [uri[prefix:] for uri in uris],
        schema=schema,
        format="parquet",
        filesystem=filesystem,
        partitioning=pads.partitioning(
            pa.schema([schema.field(c) for c in partition_columns]), flavor="hive"
        )
        if partition_columns
        else None,
        partition_base_dir=root,
    )


# pyarrow.fs.S3FileSystem's arguments and the delta-rs storage options (any case, as delta-rs
# takes them; first match wins) that mean the same.
_S3_ARGUMENTS = {
    "access_key": ("AWS_ACCESS_KEY_ID", "ACCESS_KEY_ID"),
    "secret_key": ("AWS_SECRET_ACCESS_KEY", "SECRET_ACCESS_KEY"),
    "session_token": ("AWS_SESSION_TOKEN", "AWS_TOKEN", "SESSION_TOKEN", "TOKEN"),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION", "REGION", "DEFAULT_REGION"),
    "endpoint": ("AWS_ENDPOINT_URL", "AWS_ENDPOINT", "ENDPOINT_URL", "ENDPOINT"),
}


def arrow_filesystem(settings: Settings, uri: str) -> tuple[pafs.FileSystem, str]:
    """PyArrow's filesystem for a lake location, and the location's path in it.

    For `s3://` it is configured from `settings.storage_options`, like delta-rs: the files are
    read from the server, with the keys, that the log was read from. (`FileSystem.from_uri`
    alone ignores the options: it would go to AWS with the environment's credentials.)
    Local paths and other schemes are `FileSystem.from_uri`'s.
    """
    scheme, separator, path = uri.partition("://")
    if separator and scheme in ("s3", "s3a"):
        return _s3_filesystem(settings.storage_options, bucket=path.split("/", 1)[0]), path
    return pafs.FileSystem.from_uri(uri)


def _s3_filesystem(options: Mapping[str, str], *, bucket: str) -> pafs.S3FileSystem:
    given = {key.upper(): value for key, value in options.items()}
    arguments: dict[str, Any] = {}
    for argument, keys in _S3_ARGUMENTS.items():
        value = next((given[key] for key in keys if key in given), None)
        if value:
            arguments[argument] = value
    if endpoint := arguments.pop("endpoint", None):
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        arguments.update(
            endpoint_override=(parts.netloc + parts.path).rstrip("/"), scheme=parts.scheme
        )
    elif "region" not in arguments:
        # On AWS without a region option, ask the bucket (as FileSystem.from_uri does).
        arguments["region"] = pafs.resolve_s3_region(bucket)
    if given.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "").lower() == "true":
        arguments["force_virtual_addressing"] = True
    return pafs.S3FileSystem(**arguments)


def read_arrow(
    settings: Settings,
    table: Table,
    *,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    filter: Any = None,  # a pyarrow.dataset expression, pushed down to the Parquet scan
) -> pa.Table:
    scan = dataset(settings, table, version=version)
    wanted = list(columns) if columns else None
    try:
        return scan.to_table(columns=wanted, filter=filter)
    except pa.ArrowNotImplementedError:
        # Files rewritten by delta-rs MERGE/UPDATE/DELETE store an Arrow schema with view types
        # (string_view) that a pushed-down filter cannot bind to. Prune partitions from the
        # filter, read with the table's types, then filter in memory.
        fragments = list(scan.get_fragments(filter=filter))
        pruned = pads.FileSystemDataset(fragments, scan.schema, scan.format, scan.filesystem)
        rows = pruned.to_table().filter(filter)
        return rows.select(wanted) if wanted else rows


def read_current(
    settings: Settings, table: Table, columns: Sequence[str] | None = None
) -> pa.Table:
    """The current version of every row of an SCD2 table (`is_current`)."""
    if not table.scd2:
        raise LakeError(f"{table} keeps no SCD2 history: it has no current rows to select")
    if not exists(settings, table):
        raise LakeError(f"{table} does not exist yet: run the catalog extract (ingestion) first")
    return read_arrow(settings, table, columns=columns, filter=pads.field("is_current"))


def newest_partition(settings: Settings, table: Table) -> str | None:
    """The largest value of the table's (single) partition column, as Delta spells it; None
    for an empty table. Reads the log only."""
    (column,) = table.partition_by
    values = [p[column] for p in open_table(settings, table).partitions() if p[column] is not None]
    return max(values) if values else None


def partition_rows(settings: Settings, table: Table, column: str, value: Any) -> int:
    """Rows of the partition `column = value` in the current snapshot, from the log's file
    statistics (0 for a missing table or partition). Reads the log only."""
    if not exists(settings, table):
        return 0
    actions = pa.table(open_table(settings, table).get_add_actions(flatten=True))
    if not actions.num_rows:
        return 0
    here = pc.equal(actions[f"partition.{column}"], pa.scalar(value))
    return pc.sum(actions["num_records"].filter(here)).as_py() or 0


def commit_properties(metadata: Mapping[str, Any] | None) -> CommitProperties | None:
    return CommitProperties(custom_metadata=dict(metadata)) if metadata else None


def write_arrow(
    settings: Settings,
    table: Table,
    data: pa.Table | pa.RecordBatchReader,
    *,
    mode: WriteMode = "append",
    predicate: str | None = None,
    schema_mode: Literal["merge", "overwrite"] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> int:
    """Write Arrow data as one commit and return the new version. A new table is partitioned
    as the catalog declares it.

    `mode="overwrite"` with a `predicate` replaces only the rows it matches (for example one
    partition): this is what makes a rerun of one interval idempotent.
    """
    uri = table_uri(settings, table)
    # Writing through an open table updates it to the version this write committed, which
    # stays exact when other writers commit at the same time (re-opening would not).
    target = open_table(settings, table) if exists(settings, table) else uri
    try:
        write_deltalake(
            target,
            data,
            mode=mode,
            partition_by=list(table.partition_by) or None,
            predicate=predicate,
            schema_mode=schema_mode,
            storage_options=settings.storage_options or None,
            writer_properties=WRITER_PROPERTIES,
            commit_properties=commit_properties(metadata),
        )
    except Exception as exc:  # delta-rs raises several error types; name the table in all
        raise LakeError(f"write to {table} ({uri}) failed: {exc}") from exc
    if isinstance(target, DeltaTable):
        return target.version()
    return open_table(settings, table).version()


def merge_arrow(
    settings: Settings,
    table: Table,
    data: pa.Table,
    *,
    update: bool,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Insert rows whose catalog keys are new; with `update=True` also overwrite the matching
    ones. Creates the table on first use. Returns delta-rs merge metrics (rows inserted, ...).
    """
    if not exists(settings, table):
        write_arrow(settings, table, data, metadata=metadata)
        return {"num_target_rows_inserted": data.num_rows, "num_target_rows_updated": 0}
    condition = " AND ".join(f"t.{key} = s.{key}" for key in table.keys)
    merger = open_table(settings, table).merge(
        data,
        predicate=condition,
        source_alias="s",
        target_alias="t",
        writer_properties=WRITER_PROPERTIES,
        commit_properties=commit_properties(metadata),
    )
    if update:
        merger = merger.when_matched_update_all()
    return merger.when_not_matched_insert_all().execute()


def delete_rows(
    settings: Settings,
    table: Table,
    predicate: str,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete the rows matching a SQL `predicate` in one commit; returns delta-rs metrics.

    The rows leave the current version only: older versions and their files keep them until
    `vacuum` removes those files (GDPR erasure is `delete_rows` then `vacuum`).
    """
    snapshot = open_table(settings, table)
    try:
        return snapshot.delete(predicate, commit_properties=commit_properties(metadata))
    except Exception as exc:  # a bad predicate or a failed commit: name the table
        raise LakeError(f"delete from {table} where {predicate} failed: {exc}") from exc


def vacuum(
    settings: Settings,
    table: Table,
    retention_hours: int | None = None,
    *,
    dry_run: bool = False,
) -> list[str]:
    """Delete files no version younger than `retention_hours` needs; returns their paths.

    A full vacuum: it also removes files no commit ever referenced, i.e. those of writes that
    crashed before committing. `None` keeps the table's retention (7 days by default); an
    explicit value, even 0, is honoured. Files of a write still in flight are unreferenced
    until it commits, so the retention must exceed the longest write, and time travel to
    versions older than it stops working.
    """
    snapshot = open_table(settings, table)
    try:
        return snapshot.vacuum(
            retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=retention_hours is None,
            full=True,
        )
    except Exception as exc:
        raise LakeError(f"vacuum of {table} failed: {exc}") from exc


def history(settings: Settings, table: Table, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits, newest first: version, timestamp, operation and commit metadata."""
    latest = open_table(settings, table).version()
    oldest = 0 if limit is None else max(latest - limit + 1, 0)
    return list(commits(settings, table, range(latest, oldest - 1, -1)))


def commits(settings: Settings, table: Table, versions: Iterable[int]) -> Iterator[dict[str, Any]]:
    """The commit info (with its `version`) of each of `versions` in turn, read from the log;
    stops at the first version without a log file (not committed yet, or expired).

    Not `DeltaTable.history()`: it numbers commits from the version it loaded, so its numbers
    shift when another writer commits meanwhile (delta-rs #4488).
    """
    storage = pafs.PyFileSystem(
        DeltaStorageHandler(table_uri(settings, table), options=settings.storage_options or None)
    )
    for version in versions:
        try:
            with storage.open_input_stream(f"_delta_log/{version:020d}.json") as log:
                actions = [json.loads(line) for line in log.read().splitlines() if line]
        except FileNotFoundError:
            return
        info = next((action["commitInfo"] for action in actions if "commitInfo" in action), {})
        yield {**info, "version": version}
