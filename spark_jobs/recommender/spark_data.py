"""Interactions as Spark DataFrames: read them (a file, or the interactions feature view of the
lake), index the ids, weight them, split them; the Spark engine's counterpart of data.py,
weighting.py and splits.py, with the same meaning (their docstrings are the contract).

Nothing proportional to the interactions reaches the driver: ids are numbered in Spark (each
partition's rows shifted by the sizes of the partitions before it, a few numbers), and the
driver only ever sees counts, a maximum, or the one offending value of a bad input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audotics import lake
from audotics.lake.spark import read_table
from audotics.settings import Settings
from feature_store.definitions import INTERACTIONS
from feature_store.model import AS_OF_COLUMN
from feature_store.offline import newest_as_of
from spark_jobs.recommender.data import (
    FILE_FORMATS,
    MOVIELENS_COLUMNS,
    Interactions,
    InteractionsError,
)
from spark_jobs.recommender.splits import DAY_SECONDS, split_kind
from spark_jobs.recommender.weighting import BM25_B, BM25_K1, LOG_EPSILON, WEIGHTINGS

PAIR_COLUMNS = ("user", "item", "weight", "timestamp")


@dataclass(frozen=True)
class SparkInteractions:
    """Unique (user, item) pairs with a positive weight, over a fixed id vocabulary.

    `pairs`: user, item (int indices), weight (double > 0), timestamp (epoch seconds of the
    pair's latest event, null if unknown). `user_ids` / `item_ids`: index -> external id.
    """

    pairs: DataFrame
    user_ids: DataFrame  # user int, user_id string
    item_ids: DataFrame  # item int, item_id string
    n_users: int
    n_items: int
    has_timestamps: bool

    def subset(self, condition: Column) -> SparkInteractions:
        """The pairs where `condition` holds, with the same vocabulary."""
        return replace(self, pairs=self.pairs.where(condition))

    @cached_property
    def size(self) -> int:
        return self.pairs.count()

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of an order-free digest of the content (external ids, weight, timestamp of
        every pair, and the vocabularies): the same rows in any layout keep it. Not the value
        data.py's fingerprint computes for the same rows (that one sorts them on the driver)."""

        def digest(frame: DataFrame, *columns: str) -> tuple:
            row_hash = F.xxhash64(*columns).cast(T.DecimalType(38, 0))
            return tuple(frame.agg(F.count(F.lit(1)), F.sum(row_hash)).first())

        named = self.pairs.join(self.user_ids, "user").join(self.item_ids, "item")
        parts = (
            digest(named, "user_id", "item_id", "weight", "timestamp"),
            digest(self.user_ids, "user_id"),
            digest(self.item_ids, "item_id"),
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass(frozen=True)
class SparkSplit:
    train: SparkInteractions
    test: SparkInteractions


SparkSplitter = Callable[[SparkInteractions], SparkSplit]


# --- reading ----------------------------------------------------------------------------------


def read_interactions_file(spark: SparkSession, path: str | Path, file_format: str) -> DataFrame:
    """`user_id, item_id, weight, timestamp` of a csv (with a header), parquet or MovieLens
    `u.data` file, validated like data.read_interactions_file (a missing weight is 1; a
    timestamp is epoch seconds or ISO-8601); an error names the file, the column and the
    first bad value (Spark does not know line numbers)."""
    path = Path(path)
    if file_format not in FILE_FORMATS:
        raise InteractionsError(
            f"{path}: unknown format {file_format!r}, use one of {FILE_FORMATS}"
        )
    if not (path.is_file() or (file_format == "parquet" and path.is_dir())):  # Spark's output
        raise InteractionsError(f"{path}: no such file")
    location = lake.spark.hadoop_path(str(path))
    if file_format == "movielens":
        text = T.StructType([T.StructField(c, T.StringType()) for c in MOVIELENS_COLUMNS])
        raw = spark.read.csv(location, sep="\t", schema=text, mode="FAILFAST")
    elif file_format == "csv":
        raw = spark.read.csv(location, header=True, inferSchema=False, mode="FAILFAST")
    else:
        raw = spark.read.parquet(location)
    return validated(raw, str(path))


def validated(raw: DataFrame, source: str) -> DataFrame:
    """The four columns, typed, or an InteractionsError naming the first bad value."""
    missing = {"user_id", "item_id"} - set(raw.columns)
    if missing:
        raise InteractionsError(
            f"{source}: the columns {raw.columns} lack {sorted(missing)}; expected "
            "user_id,item_id[,weight][,timestamp]"
        )
    ids = {c: F.trim(F.col(c).cast("string")) for c in ("user_id", "item_id")}
    weight = F.col("weight").try_cast("double") if "weight" in raw.columns else F.lit(1.0)
    if "timestamp" not in raw.columns:
        seconds = F.lit(None).cast("long")
    elif isinstance(raw.schema["timestamp"].dataType, T.TimestampType):
        seconds = F.unix_seconds("timestamp")
    else:
        text = F.col("timestamp").cast("string")
        seconds = F.coalesce(
            text.try_cast("double").cast("long"), F.unix_seconds(text.try_cast("timestamp"))
        )
    checks = [(c, e.isNull() | (e == ""), f"{c} is empty") for c, e in ids.items()]
    if "weight" in raw.columns:
        bad = weight.isNull() | F.isnan(weight) | (weight <= 0) | (weight == float("inf"))
        checks.append(("weight", bad, "is not a number > 0"))
    if "timestamp" in raw.columns:
        checks.append(("timestamp", seconds.isNull(), "is neither epoch seconds nor ISO-8601"))
    for column, bad, reason in checks:
        example = raw.where(bad).select(column).first()
        if example is not None:
            raise InteractionsError(f"{source}: {column} {example[0]!r} {reason}")
    return raw.select(
        ids["user_id"].alias("user_id"),
        ids["item_id"].alias("item_id"),
        weight.alias("weight"),
        seconds.alias("timestamp"),
    )


@dataclass(frozen=True)
class SparkSnapshot:
    """The training input: the interactions view as of one date, at one table version."""

    as_of: dt.date
    data_version: int
    interactions: SparkInteractions


def load_snapshot(
    spark: SparkSession,
    settings: Settings,
    as_of: dt.date | None = None,
    data_version: int | None = None,
) -> SparkSnapshot:
    """data.load_snapshot in Spark: the interactions view as of `as_of` (default: the newest
    snapshot), at a pinned table version (default: the current one)."""
    view = INTERACTIONS
    as_of = as_of or newest_as_of(settings, view)
    version = lake.version(settings, view.table) if data_version is None else data_version
    if version is None:
        raise InteractionsError(f"{view.table} does not exist yet: run `audotics features build`")
    source = f"{view.table} as of {as_of} (version {version})"
    rows = read_table(
        spark, settings, view.table, version=version, partition_filter=f"{AS_OF_COLUMN} = '{as_of}'"
    )
    frame = rows.select(
        F.col("user_id"),
        F.col("track_id").alias("item_id"),
        F.col("confidence").alias("weight"),
        F.unix_seconds("last_ts").alias("timestamp"),
    )
    nonpositive = frame.where(F.col("weight") <= 0).count()
    if nonpositive:
        raise InteractionsError(f"{source}: {nonpositive} rows with confidence <= 0")
    return SparkSnapshot(as_of, version, index_interactions(frame, source=source))


# --- indexing ---------------------------------------------------------------------------------


def index_interactions(frame: DataFrame, *, source: str = "interactions") -> SparkInteractions:
    """data.index_interactions in Spark: ids numbered in sorted order (so the indices are a
    function of the content), repeated pairs merged (weights summed, latest timestamp kept).
    The pairs are checkpointed on the executors: every later step starts from them."""
    user_ids, n_users = dense_index(frame, "user_id", "user")
    item_ids, n_items = dense_index(frame, "item_id", "item")
    if n_users == 0:
        raise InteractionsError(f"{source}: no interactions")
    pairs = (
        frame.join(user_ids, "user_id")
        .join(item_ids, "item_id")
        .groupBy("user", "item")
        .agg(F.sum("weight").alias("weight"), F.max("timestamp").alias("timestamp"))
        .localCheckpoint()
    )
    has_timestamps = pairs.where(F.col("timestamp").isNull()).isEmpty()
    return SparkInteractions(pairs, user_ids, item_ids, n_users, n_items, has_timestamps)


def dense_index(frame: DataFrame, id_column: str, index_column: str) -> tuple[DataFrame, int]:
    """The distinct values of `id_column`, sorted, numbered 0..n-1 (`index_column`), and n.

    Without a window over one partition: monotonically_increasing_id numbers the rows of each
    partition of the sorted ids; each partition is then shifted by the sizes of those before
    it, one number per partition collected to the driver."""
    ordered = (
        frame.select(id_column)
        .distinct()
        .orderBy(id_column)
        .select(
            id_column,
            F.spark_partition_id().alias("_partition"),
            F.monotonically_increasing_id().alias("_row"),
        )
        .localCheckpoint()  # materialized once: both passes below see the same numbering
    )
    sizes = sorted(ordered.groupBy("_partition").count().collect())
    offsets, total = [], 0
    for partition, count in sizes:
        offsets.append((partition, total))
        total += count
    shifts = ordered.sparkSession.createDataFrame(offsets, "_partition int, _offset long")
    # the row number within its partition is the low 33 bits of monotonically_increasing_id
    position = F.col("_row") - F.shiftleft(F.col("_partition").cast("long"), 33) + F.col("_offset")
    index = ordered.join(F.broadcast(shifts), "_partition").select(
        id_column, position.cast("int").alias(index_column)
    )
    return index.localCheckpoint(), total


# --- confidence -------------------------------------------------------------------------------


def with_rating(pairs: DataFrame, weighting: str, n_items: int) -> DataFrame:
    """weighting.weighted as Spark expressions: `rating` = w(r) of each pair's weight r, where
    `n_items` is the vocabulary's size (BM25's idf counts every item, as the matrix does)."""
    r = F.col("weight")
    if weighting == "none":
        return pairs.withColumn("rating", r)
    if weighting == "log":
        return pairs.withColumn("rating", F.log1p(r / LOG_EPSILON))
    if weighting != "bm25":
        raise ValueError(f"weighting {weighting!r} is not one of {WEIGHTINGS}")
    # idf >= 0 keeps every confidence >= 1, even for a user who has every item
    user_items = F.count(F.lit(1)).over(Window.partitionBy("user"))
    idf = F.greatest(F.lit(0.0), F.log(F.lit(float(n_items))) - F.log1p(user_items))
    item_total = F.sum(r).over(Window.partitionBy("item"))
    # every pair has weight > 0, so every item present has a total > 0: their mean
    mean_total = pairs.agg((F.sum(r) / F.countDistinct("item")).alias("_mean_total"))
    length_norm = (1.0 - BM25_B) + BM25_B * F.col("_item_total") / F.col("_mean_total")
    bm25 = r * (BM25_K1 + 1.0) / (BM25_K1 * length_norm + r) * F.col("_idf")
    return (
        pairs.withColumn("_idf", idf)
        .withColumn("_item_total", item_total)
        .crossJoin(F.broadcast(mean_total))
        .withColumn("rating", bm25)
        .drop("_idf", "_item_total", "_mean_total")
    )


# --- splits -----------------------------------------------------------------------------------


def stratified_split(
    data: SparkInteractions, train_share: float = 0.75, seed: int = 42
) -> SparkSplit:
    """splits.stratified_split in Spark: per user, round((1 - train_share) * n) pairs to test
    (half to even, as numpy's rint), keeping >= 1 in train. The random order is a seeded hash
    of the pair, so the split does not depend on how the rows are partitioned (the sides are
    not the ones numpy's generator draws)."""
    if not 0.0 < train_share < 1.0:
        raise InteractionsError(f"stratified split: train share {train_share} is not in (0, 1)")
    per_user = Window.partitionBy("user")
    shuffled = per_user.orderBy(F.xxhash64(F.lit(seed), "user", "item"), "item")
    n = F.count(F.lit(1)).over(per_user)
    n_test = F.least(F.bround((1.0 - train_share) * n, 0), n - 1)
    flagged = data.pairs.withColumn("_test", (F.row_number().over(shuffled) - 1) < n_test)
    flagged = flagged.localCheckpoint()  # both sides, and every trial, read the same flags

    def side(test: bool) -> SparkInteractions:
        return replace(data, pairs=flagged.where(F.col("_test") == test).drop("_test"))

    return SparkSplit(side(False), side(True))


def temporal_split(
    data: SparkInteractions, cutoff: int, horizon_seconds: int | None = None
) -> SparkSplit:
    """Train on pairs with timestamp < cutoff, test on cutoff <= timestamp < cutoff + horizon."""
    if not data.has_timestamps:
        raise InteractionsError("temporal split: the interactions have no timestamps")
    ts = F.col("timestamp")
    before, after = ts < cutoff, ts >= cutoff
    if horizon_seconds is not None:
        after &= ts < cutoff + horizon_seconds
    counts = data.pairs.agg(
        F.sum(before.cast("long")).alias("before"), F.sum(after.cast("long")).alias("after")
    ).first()
    if not counts["before"] or not counts["after"]:
        raise InteractionsError(
            f"temporal split at {cutoff}: {counts['before'] or 0} pairs before and "
            f"{counts['after'] or 0} in the test window; both sides need some"
        )
    return SparkSplit(data.subset(before), data.subset(after))


def last_days_split(data: SparkInteractions, days: float) -> SparkSplit:
    """Temporal split whose test window is the last `days` days of the data."""
    if not data.has_timestamps:
        raise InteractionsError("temporal split: the interactions have no timestamps")
    end = int(data.pairs.agg(F.max("timestamp")).first()[0]) + 1
    return temporal_split(data, end - int(days * DAY_SECONDS))


def parse_split(spec: str, seed: int) -> SparkSplitter:
    """splits.parse_split's specs (`stratified:0.75`, `temporal:7`), split in Spark."""
    kind, number = split_kind(spec)
    if kind == "stratified":
        return lambda data: stratified_split(data, number, seed)
    return lambda data: last_days_split(data, number)


def from_interactions(spark: SparkSession, data: Interactions) -> SparkInteractions:
    """Interactions already on the driver as DataFrames, with the same indices (tests and
    benchmarks that hold arrays; a pipeline reads its data with Spark instead)."""
    timestamps = data.timestamps
    pairs = pa.table(
        {
            "user": pa.array(data.users, pa.int32()),
            "item": pa.array(data.items, pa.int32()),
            "weight": pa.array(data.weights, pa.float64()),
            "timestamp": pa.array(timestamps, pa.int64())
            if timestamps is not None
            else pa.nulls(len(data), pa.int64()),
        }
    )

    def vocabulary(ids: np.ndarray, id_column: str, index_column: str) -> DataFrame:
        table = pa.table(
            {
                id_column: pa.array(ids.astype(str)),
                index_column: pa.array(np.arange(len(ids)), pa.int32()),
            }
        )
        return spark.createDataFrame(table)

    return SparkInteractions(
        spark.createDataFrame(pairs),
        vocabulary(data.user_ids, "user_id", "user"),
        vocabulary(data.item_ids, "item_id", "item"),
        data.n_users,
        data.n_items,
        timestamps is not None,
    )
