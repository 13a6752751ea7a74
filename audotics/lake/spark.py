"""Spark's side of the lake: the Delta tables of `audotics.lake`, read and written by Spark.

Delta's JVM jars are not available everywhere we run, so by default Spark never speaks Delta:
delta-rs owns the transaction log and Spark only reads and writes Parquet files.

- Reading: delta-rs resolves one snapshot to its active files and their typed partition values
  (the add actions); Spark reads exactly those files with the table's schema, and each row gets
  its partition values from its file's add action. Directory names are never parsed: the log,
  not the path, is the truth (paths are free-form in the Delta protocol).
- Writing: Spark writes Parquet into a fresh folder inside the table (`spark-<time>-<id>/`),
  then delta-rs commits those files, with statistics read from their footers, as one
  transaction. Until then no reader sees them; if the writer dies first they stay unreferenced
  until a full vacuum (`audotics.lake.vacuum`) deletes them.

`settings.spark_delta_native` switches both to delta-spark's `format("delta")`, which needs
Delta's jars on the Spark classpath. Object stores: delta-rs gets `settings.storage_options`,
Spark reaches the same location through Hadoop's connector (see `hadoop_path`); pyspark ships
no S3A connector, so an s3a:// path without it is refused at once, naming what to add.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.fs import DeltaStorageHandler
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from audotics.lake.delta import (
    LakeError,
    WriteMode,
    commit_properties,
    commits,
    exists,
    open_table,
    table_uri,
)
from audotics.lake.tables import Table
from audotics.settings import Settings

# Reader features whose snapshots are plain Parquet files listed by the log: all this path can
# read. Any other (deletionVectors, columnMapping, typeWidening, ...) changes how files are read.
READABLE_READER_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})
# Writer features that a commit of files Spark wrote honours. The others change how files must
# be written (deletionVectors, columnMapping, rowTracking, ...) or need values the writer
# computes or checks (checkConstraints, generatedColumns, identityColumns).
WRITABLE_WRITER_FEATURES = frozenset(
    {
        "appendOnly",  # delta-rs refuses the commit if an overwrite would remove files
        "invariants",  # refused below when a column actually declares one
        "timestampNtz",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "checkpointProtection",
        "changeDataFeed",  # whole-file adds and removes are valid change data
        "domainMetadata",
    }
)
# Partition column types that Spark's directory names and Delta's partition values spell alike.
# (Spark formats timestamps in the session time zone and floats its own way.)
WRITABLE_PARTITION_TYPES = (
    T.StringType,
    T.DateType,
    T.BooleanType,
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
)
# Commit metadata of every Spark write: {"folder", "mode", "predicate"}; it is also how a
# writer finds the version it committed among concurrent commits.
SPARK_WRITE_KEY = "sparkWrite"

_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # Spark's directory name for a null partition value
_LOCAL_SCHEME = "^file:/+"  # local files: Spark says file:/x, we say file:///x; compare /x
_FILE_KEY = "_audotics_file"
_FILE_KNOWN = "_audotics_file_known"
_ROW = "_audotics_row"

# Hadoop's S3A connector (the hadoop-aws jar) and the AWS SDK v2 bundle it calls: pyspark
# ships neither, so Spark reaches an s3a:// path only if they are added to its classpath.
S3A_CLASSES = {
    "org.apache.hadoop.fs.s3a.S3AFileSystem": "org.apache.hadoop:hadoop-aws:{hadoop}",
    "software.amazon.awssdk.services.s3.S3Client": (
        "software.amazon.awssdk:bundle (the version hadoop-aws {hadoop} depends on)"
    ),
}

_Result = TypeVar("_Result")


def hadoop_path(uri: str) -> str:
    """The path Spark (Hadoop) uses for a lake location.

    `s3://bucket/key` becomes `s3a://bucket/key` (Hadoop's S3 connector, configured through
    `spark.hadoop.fs.s3a.*`, while delta-rs reads `settings.storage_options`); a local path becomes
    `file://<absolute path>` so that a cluster's default filesystem (HDFS) never captures it;
    other URIs (`gs://`, `abfss://`, `file:`) are used as they are.
    """
    if uri.startswith("s3://"):
        return "s3a://" + uri.removeprefix("s3://")
    if "://" in uri or uri.startswith("file:"):
        return uri
    return "file://" + os.path.abspath(uri)


def _require_s3a(spark: SparkSession, path: str) -> None:
    """Refuse an `s3a://` path at once when Spark's classpath lacks the S3A connector, with
    what to add, instead of a Java stack trace from deep inside the first read or write."""
    if not path.startswith("s3a://"):
        return
    hadoop_conf = spark._jsc.hadoopConfiguration()
    hadoop = spark._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    missing = []
    for name, artifact in S3A_CLASSES.items():
        try:
            hadoop_conf.getClassByName(name)  # the class loader Hadoop's filesystems load with
        except Py4JJavaError:
            missing.append(f"{artifact.format(hadoop=hadoop)} ({name})")
    if missing:
        raise LakeError(
            f"Spark cannot reach {path}: its classpath lacks Hadoop's S3A connector: "
            f"{'; '.join(missing)}. Start Spark with spark.jars.packages="
            f"org.apache.hadoop:hadoop-aws:{hadoop} (it brings the AWS SDK bundle), or "
            "spark.jars with both jars, and set spark.hadoop.fs.s3a.endpoint, "
            "spark.hadoop.fs.s3a.access.key and spark.hadoop.fs.s3a.secret.key (the values of "
            "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in "
            "AUDOTICS_STORAGE_OPTIONS), and for a server other than AWS "
            "spark.hadoop.fs.s3a.path.style.access=true and, over http, "
            "spark.hadoop.fs.s3a.connection.ssl.enabled=false (see infra/README.md)."
        )


def _spark_path(spark: SparkSession, uri: str) -> str:
    """`hadoop_path(uri)`, once Spark is known to be able to reach it."""
    path = hadoop_path(uri)
    _require_s3a(spark, path)
    return path


def read_table(
    spark: SparkSession,
    settings: Settings,
    table: Table,
    *,
    version: int | None = None,
    partition_filter: str | None = None,
) -> DataFrame:
    """One consistent snapshot of a Delta table (the latest, or `version`) as a DataFrame.

    `partition_filter` is a SQL condition on partition columns (`"event_date >= '2026-11-01'"`):
    only the files of matching partitions are read. Filters applied to the returned DataFrame are
    correct too, but do not skip files (the partition values are joined in, not read from paths).
    """
    uri = table_uri(settings, table)
    if settings.spark_delta_native:
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        location = _spark_path(spark, uri)
        frame = _native(table, lambda: reader.load(location))
        return frame.where(partition_filter) if partition_filter else frame

    snapshot = open_table(settings, table, version=version)
    _refuse_unsupported(snapshot, table, writing=False)
    schema = _spark_schema(snapshot)
    partition_columns = snapshot.metadata().partition_columns
    files = _active_files(snapshot)
    if partition_filter:
        files = files.take(
            _matching_rows(
                spark,
                files.select(partition_columns),
                partition_filter,
                f"partition_filter of {table}",
            )
        )
    if files.num_rows == 0:
        # Built from Arrow, it is a local relation: no Python worker to start for a count.
        empty = to_arrow_schema(schema, timezone="UTC").empty_table()
        return spark.createDataFrame(empty, schema=schema)

    root = _spark_path(spark, uri)
    paths = [f"{root}/{path}" for path in files["path"].to_pylist()]
    data_schema = T.StructType([f for f in schema.fields if f.name not in partition_columns])
    scan = (
        spark.read.schema(data_schema)
        # No partition discovery: partition values come from the log (and discovery would
        # trip over the mix of delta-rs's and Spark's folder layouts).
        .option("recursiveFileLookup", "true")
        # No globbing either: the paths are literal, even if a name holds `[` or `{`.
        .option("__globPaths__", "false")
        .parquet(*paths)
    )
    if not partition_columns:
        return scan

    lookup = files.select(partition_columns).append_column(
        _FILE_KEY, pa.array([re.sub(_LOCAL_SCHEME, "/", path) for path in paths])
    )
    lookup = lookup.append_column(_FILE_KNOWN, pa.repeat(True, lookup.num_rows))
    # Spark reports a file's path URI-encoded; decoding it exactly (a literal `+` stays `+`)
    # gives back the path we listed.
    spark_file = F.url_decode(F.replace(F.col("_metadata.file_path"), F.lit("+"), F.lit("%2B")))
    rows = scan.withColumn(_FILE_KEY, F.regexp_replace(spark_file, _LOCAL_SCHEME, "/")).join(
        F.broadcast(spark.createDataFrame(lookup)), _FILE_KEY, "left"
    )
    # A file the lookup misses must fail the query, never yield rows with wrong partition values.
    unknown_file = F.raise_error(
        F.concat(F.lit(f"{table}: no partition values for file "), F.col(_FILE_KEY))
    )
    return rows.select(
        *(
            F.when(F.col(_FILE_KNOWN).isNull(), unknown_file)
            .otherwise(F.col(f.name))
            .cast(f.dataType)
            .alias(f.name)
            if f.name in partition_columns
            else F.col(f.name)
            for f in schema.fields
        )
    )


def write_table(
    df: DataFrame,
    settings: Settings,
    table: Table,
    *,
    mode: WriteMode = "append",
    predicate: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> int:
    """Write a DataFrame to a Delta table as one commit and return the version it created.

    Creates the table on first write (schema and nullability from `df`, partitioned as the
    catalog declares); after that `df` must have the table's columns and types, and the
    table's partitioning must be the catalog's. `mode="overwrite"` replaces the whole table,
    or with a `predicate` on partition columns (`"as_of_date = '2026-11-03'"`) only the
    partitions it matches: `df` may then only hold rows of those partitions, which makes the
    rerun of an interval idempotent.
    """
    partition_by = list(table.partition_by) or None
    if mode not in ("append", "overwrite"):
        raise LakeError(f"write to {table}: mode must be append or overwrite, not {mode}")
    if predicate is not None and mode != "overwrite":
        raise LakeError(f"write to {table}: a predicate needs mode='overwrite'")
    if settings.spark_delta_native:
        return _write_native(df, settings, table, mode, partition_by, predicate, metadata)

    _require_microsecond_timestamps(df.sparkSession, table)
    current = open_table(settings, table) if exists(settings, table) else None
    schema, partition_columns = _target_layout(df.schema, partition_by, current, table)
    staged = _stage(df.select(*schema.fieldNames()), settings, table, partition_columns)
    return _commit(df.sparkSession, settings, table, staged, mode, predicate, metadata)


# --- reading ----------------------------------------------------------------------------------


def _spark_schema(snapshot: DeltaTable) -> T.StructType:
    # Delta stores its schema as Spark's StructType JSON, so this conversion is exact.
    return T.StructType.fromJson(json.loads(snapshot.schema().to_json()))


def _active_files(snapshot: DeltaTable) -> pa.Table:
    """The snapshot's data files: `path` (relative to the table root, as on storage), `size`, and
    one column per partition column with its typed value."""
    actions = pa.table(snapshot.get_add_actions(flatten=True))
    columns = {
        # The log holds paths URI-encoded; storage holds them decoded.
        "path": pa.array([unquote(path) for path in actions["path"].to_pylist()], pa.string()),
        "size": actions["size_bytes"],
    }
    for name in snapshot.metadata().partition_columns:
        columns[name] = actions[f"partition.{name}"]
    return pa.table(columns)


def _matching_rows(spark: SparkSession, rows: pa.Table, predicate: str, context: str) -> list[int]:
    """Indices of `rows` for which the SQL `predicate` holds, evaluated by Spark (Spark's SQL
    semantics, as for the data); a predicate on other columns is refused."""
    indexed = rows.append_column(_ROW, pa.array(range(rows.num_rows), pa.int64()))
    try:
        matched = spark.createDataFrame(indexed).where(predicate).select(_ROW).collect()
    except AnalysisException as exc:
        raise LakeError(
            f"{context}: {predicate!r} must be a SQL condition on the partition columns "
            f"{rows.column_names}: {exc}"
        ) from exc
    return sorted(row[0] for row in matched)


def _refuse_unsupported(snapshot: DeltaTable, table: Table, *, writing: bool) -> None:
    protocol = snapshot.protocol()
    if writing:
        unsupported = set(protocol.writer_features or ()) - WRITABLE_WRITER_FEATURES
    else:
        unsupported = set(protocol.reader_features or ()) - READABLE_READER_FEATURES
    unsupported |= _features_in_metadata(snapshot, writing=writing)
    if unsupported:
        raise LakeError(
            f"Spark cannot {'write' if writing else 'read'} Delta table {table} without "
            f"Delta's jars: it uses table features {sorted(unsupported)}, which reading and "
            "writing plain Parquet files cannot honour (spark_delta_native, with the jars, can)."
        )


def _features_in_metadata(snapshot: DeltaTable, *, writing: bool) -> set[str]:
    """Features in use through table metadata: legacy protocols (without feature lists) allow
    them by version, and the metadata says whether a table actually uses them."""
    configuration = snapshot.metadata().configuration
    found = set()
    if configuration.get("delta.columnMapping.mode", "none") != "none":
        found.add("columnMapping")
    if not writing:
        return found
    if any(key.startswith("delta.constraints.") for key in configuration):
        found.add("checkConstraints")
    for field in snapshot.schema().fields:
        keys = field.metadata.keys()
        if "delta.invariants" in keys:
            found.add("invariants")
        if "delta.generationExpression" in keys:
            found.add("generatedColumns")
        if any(key.startswith("delta.identity.") for key in keys):
            found.add("identityColumns")
    return found


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StagedWrite:
    """Files Spark wrote into `folder` (relative to the table root), not yet committed."""

    folder: str
    schema: T.StructType  # of the written rows, partition columns included
    partition_columns: list[str]
    files: list[AddAction]


def _require_microsecond_timestamps(spark: SparkSession, table: Table) -> None:
    # Spark's default INT96 timestamps read back in delta-rs as nanoseconds without a time zone.
    if spark.conf.get("spark.sql.parquet.outputTimestampType") != "TIMESTAMP_MICROS":
        raise LakeError(
            f"write to {table}: set spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS "
            "(audotics.spark.spark_session does) so timestamps are Delta's timestamp[us, UTC]"
        )


def _target_layout(
    rows: T.StructType,
    partition_by: Sequence[str] | None,
    snapshot: DeltaTable | None,
    table: Table,
) -> tuple[T.StructType, list[str]]:
    """The schema and partition columns rows are written with, after checking they fit."""
    if snapshot is None:
        schema, partition_columns = rows, list(partition_by or [])
    else:
        _refuse_unsupported(snapshot, table, writing=True)
        schema, partition_columns = _spark_schema(snapshot), snapshot.metadata().partition_columns
        if partition_by is not None and list(partition_by) != partition_columns:
            raise LakeError(
                f"{table} is partitioned by {partition_columns}, not {list(partition_by)}"
            )
        _require_same_columns(rows, schema, table)
    for name in partition_columns:
        if name not in schema.fieldNames():
            raise LakeError(f"write to {table}: no column {name} to partition by")
        if not isinstance(schema[name].dataType, WRITABLE_PARTITION_TYPES):
            raise LakeError(
                f"write to {table}: partition column {name} is "
                f"{schema[name].dataType.simpleString()}; Spark writes can partition by "
                "string, date, boolean and integer columns"
            )
    return schema, partition_columns


def _require_same_columns(rows: T.StructType, schema: T.StructType, table: Table) -> None:
    expected = {f.name: f.dataType.simpleString() for f in schema.fields}
    actual = {f.name: f.dataType.simpleString() for f in rows.fields}
    missing, unexpected = expected.keys() - actual.keys(), actual.keys() - expected.keys()
    problems = [f"missing columns {sorted(missing)}"] if missing else []
    problems += [f"unexpected columns {sorted(unexpected)}"] if unexpected else []
    problems += [
        f"{name} is {actual[name]}, the table has {expected[name]}"
        for name in sorted(expected.keys() & actual.keys())
        if actual[name] != expected[name]
    ]
    if problems:
        raise LakeError(f"DataFrame does not fit {table}: " + "; ".join(problems))


def _stage(
    df: DataFrame, settings: Settings, table: Table, partition_columns: list[str]
) -> _StagedWrite:
    """Spark writes the rows into a folder of their own; nothing is committed yet."""
    uri = table_uri(settings, table)
    # Unique per attempt: concurrent writers and reruns after a crash never share a folder
    # (nor Spark's _temporary inside it). No leading `_` or `.`: vacuum skips such folders.
    folder = f"spark-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
    df.write.mode("errorifexists").partitionBy(*partition_columns).parquet(
        f"{_spark_path(df.sparkSession, uri)}/{folder}"
    )
    storage = pafs.PyFileSystem(DeltaStorageHandler(uri, options=settings.storage_options or None))
    listing = storage.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    files = [
        AddAction(
            path=info.path,  # relative to the table root; delta-rs URI-encodes it in the log
            size=info.size,
            partition_values=_spark_partition_values(info.path, partition_columns),
            modification_time=int(info.mtime.timestamp() * 1000),
            data_change=True,
            stats=_file_stats(pq.read_metadata(info.path, filesystem=storage)),
        )
        for info in listing
        if info.type == pafs.FileType.File
        and info.base_name.endswith(".parquet")
        and not info.base_name.startswith((".", "_"))
    ]
    return _StagedWrite(folder, df.schema, partition_columns, files)


def _spark_partition_values(path: str, partition_columns: list[str]) -> dict[str, str | None]:
    """Partition values of a file Spark just wrote, from the `name=value` folders it created.

    Parsing is safe here (unlike for reading) because Spark made these names moments ago:
    values are escaped as %XX, and null is `__HIVE_DEFAULT_PARTITION__`. Delta spells the
    values of the supported partition types the same way.
    """
    folders = path.split("/")[1:-1]  # between the write's folder and the file name
    values = {}
    for folder in folders:
        name, _, escaped = folder.partition("=")
        value = unquote(escaped)
        values[name] = None if value == _HIVE_NULL else value
    if list(values) != partition_columns:
        raise LakeError(f"{path}: not a file of a Spark write partitioned by {partition_columns}")
    return values


def _file_stats(footer: pq.FileMetaData) -> str:
    """Delta's statistics of one data file (numRecords, minValues, maxValues, nullCount) from its
    Parquet footer, for the top-level primitive columns (as delta-rs does).

    min/max only where they are exact and safe for data skipping: integers, strings, dates, and
    UTC timestamps (widened outward to whole milliseconds, the precision Delta readers expect);
    none for floating point (a footer cannot tell whether NaN was present) or booleans.
    """
    top_level = {
        field.name
        for field in footer.schema.to_arrow_schema()
        if not pa.types.is_nested(field.type)
    }
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    null_count: dict[str, int] = {}
    for index in range(footer.num_columns):
        name = footer.schema.column(index).path
        if name not in top_level:
            continue
        chunks = [footer.row_group(group).column(index) for group in range(footer.num_row_groups)]
        stats = [chunk.statistics for chunk in chunks]
        if any(s is None or not s.has_null_count for s in stats):
            continue  # without null counts nothing about this column is certain
        null_count[name] = sum(s.null_count for s in stats)
        with_values = [
            s for s, chunk in zip(stats, chunks, strict=True) if s.null_count < chunk.num_values
        ]
        if with_values and all(s.has_min_max for s in with_values):
            bounds = _stat_bounds(min(s.min for s in with_values), max(s.max for s in with_values))
            if bounds:
                minimum[name], maximum[name] = bounds
    return json.dumps(
        {
            "numRecords": footer.num_rows,
            "minValues": minimum,
            "maxValues": maximum,
            "nullCount": null_count,
        }
    )


def _stat_bounds(low: Any, high: Any) -> tuple[Any, Any] | None:
    if isinstance(low, bool):
        return None
    if isinstance(low, int | str):
        return low, high
    if isinstance(low, dt.datetime):
        if low.tzinfo is None:  # timestamp_ntz: left out, like floats
            return None
        ceiling = high + dt.timedelta(microseconds=-high.microsecond % 1000)
        return _utc_millis(low), _utc_millis(ceiling)
    if isinstance(low, dt.date):
        return low.isoformat(), high.isoformat()
    return None


def _utc_millis(moment: dt.datetime) -> str:
    """Delta's timestamp statistics format, truncated to milliseconds."""
    utc = moment.astimezone(dt.UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _commit(
    spark: SparkSession,
    settings: Settings,
    table: Table,
    staged: _StagedWrite,
    mode: WriteMode,
    predicate: str | None,
    metadata: Mapping[str, Any] | None,
) -> int:
    """Commit staged files as one transaction (with the removal of the files an overwrite
    replaces) and return its version."""
    _refuse_rows_outside(spark, staged, predicate, table)
    write = {"folder": staged.folder, "mode": mode, "predicate": predicate}
    properties = commit_properties({**(metadata or {}), SPARK_WRITE_KEY: write})
    uri = table_uri(settings, table)
    failure = (
        f"commit of Spark write {staged.folder} to {table} failed "
        "(its files stay invisible until a vacuum deletes them)"
    )
    if not exists(settings, table):
        _refuse_nulls(staged, staged.schema, table)
        try:
            create_table_with_add_actions(
                uri,
                DeltaSchema.from_json(staged.schema.json()),
                staged.files,
                mode="error",
                partition_by=staged.partition_columns,
                storage_options=settings.storage_options or None,
                commit_properties=properties,
            )
            return 0
        except Exception as exc:
            if not exists(settings, table):
                raise LakeError(f"{failure}: {exc}") from exc
            # Another writer created the table first: commit onto it like onto any table.

    snapshot = open_table(settings, table)
    schema, _ = _target_layout(staged.schema, staged.partition_columns, snapshot, table)
    _refuse_nulls(staged, schema, table)
    replaced = [] if mode == "append" else _replaced_files(spark, snapshot, predicate, table)
    read_version = snapshot.version()
    try:
        # "append" with explicit removes: delta-rs's "overwrite" only takes partition filters.
        snapshot.create_write_transaction(
            [*staged.files, *replaced],
            mode="append",
            schema=snapshot.schema(),
            partition_by=staged.partition_columns,
            commit_properties=properties,
        )
    except Exception as exc:  # a conflict with a concurrent commit, or a refused commit
        raise LakeError(f"{failure}: {exc}") from exc
    return _committed_version(settings, table, staged.folder, read_version)


def _refuse_nulls(staged: _StagedWrite, schema: T.StructType, table: Table) -> None:
    required = {f.name for f in schema.fields if not f.nullable}
    for add in staged.files:
        nulls = json.loads(add.stats)["nullCount"]
        null_partitions = {name for name, value in add.partition_values.items() if value is None}
        violated = {name for name in required if nulls.get(name) or name in null_partitions}
        if violated:
            raise LakeError(f"write to {table}: nulls in non-nullable columns {sorted(violated)}")


def _refuse_rows_outside(
    spark: SparkSession, staged: _StagedWrite, predicate: str | None, table: Table
) -> None:
    """An overwrite may only write rows its predicate covers: a rerun would not replace others."""
    if predicate is None or not staged.files:
        return
    types = to_arrow_schema(T.StructType([staged.schema[c] for c in staged.partition_columns]))
    written = pa.table(
        {
            name: pa.array([add.partition_values[name] for add in staged.files]).cast(
                types.field(name).type
            )
            for name in staged.partition_columns
        },
        schema=types,
    )
    context = f"write to {table}"
    outside = set(range(written.num_rows)) - set(_matching_rows(spark, written, predicate, context))
    if outside:
        partitions = sorted({json.dumps(staged.files[index].partition_values) for index in outside})
        raise LakeError(
            f"{context}: rows of partitions {partitions} lie outside the overwrite's predicate "
            f"{predicate!r}"
        )


def _replaced_files(
    spark: SparkSession, snapshot: DeltaTable, predicate: str | None, table: Table
) -> list[RemoveAction]:
    """Remove actions for the files an overwrite replaces: all, or the predicate's partitions."""
    files = _active_files(snapshot)
    partition_columns = snapshot.metadata().partition_columns
    if predicate is not None:
        context = f"overwrite of {table}"
        matching = _matching_rows(spark, files.select(partition_columns), predicate, context)
        files = files.take(pa.array(matching, pa.int64()))  # typed: no match is an empty list
    # Delta's partition value strings; pyarrow spells the writable partition types the same way.
    values = {name: pc.cast(files[name], pa.string()).to_pylist() for name in partition_columns}
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return [
        RemoveAction(
            path=path,
            data_change=True,
            deletion_timestamp=now,
            size=size,
            partition_values={name: values[name][index] for name in partition_columns},
        )
        for index, (path, size) in enumerate(
            zip(files["path"].to_pylist(), files["size"].to_pylist(), strict=True)
        )
    ]


def _committed_version(settings: Settings, table: Table, folder: str, read_version: int) -> int:
    # create_write_transaction does not report its version, and other writers may have
    # committed around ours: find it among the commits after the version we read.
    for commit in commits(settings, table, itertools.count(read_version + 1)):
        if (commit.get(SPARK_WRITE_KEY) or {}).get("folder") == folder:
            return commit["version"]
    raise LakeError(f"{table}: the commit of Spark write {folder} is not in its log")


# --- delta-spark (Delta's jars) ---------------------------------------------------------------


def _write_native(
    df: DataFrame,
    settings: Settings,
    table: Table,
    mode: WriteMode,
    partition_by: Sequence[str] | None,
    predicate: str | None,
    metadata: Mapping[str, Any] | None,
) -> int:
    writer = df.write.format("delta").mode(mode).partitionBy(*(partition_by or []))
    if predicate:
        writer = writer.option("replaceWhere", predicate)
    if metadata:
        writer = writer.option("userMetadata", json.dumps(dict(metadata), sort_keys=True))
    location = _spark_path(df.sparkSession, table_uri(settings, table))
    _native(table, lambda: writer.save(location))
    # The latest version: ours unless another writer committed in the meantime.
    return open_table(settings, table).version()


def _native(table: Table, action: Callable[[], _Result]) -> _Result:
    try:
        return action()
    except Exception as exc:
        if "DATA_SOURCE_NOT_FOUND" not in str(exc):
            raise
        raise LakeError(
            f"{table}: spark_delta_native is on, but Spark has no Delta Lake jars. Start "
            "Spark with io.delta:delta-spark_2.13 (spark.jars.packages) and the Delta session "
            "extension, or turn AUDOTICS_SPARK_DELTA_NATIVE off to use delta-rs."
        ) from exc
