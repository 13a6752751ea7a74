"""The offline store: Delta tables features/<view>, one row per entity and `as_of_date`, and
point-in-time joins that build training sets from them with Spark.

Point-in-time rule: the snapshot as of day D holds data through the end of D, so it becomes
*available* at D+1 00:00 UTC. A row stamped t gets, for each view, the latest snapshot available
at t (as_of_date <= date(t) - 1, i.e. strictly before t's UTC day) and only while fresh
(t < D+1 00:00 + view.ttl); otherwise its features are null. No value from the future.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from audotics.lake.spark import read_table
from audotics.settings import Settings
from feature_store.definitions import FEATURE_VIEWS
from feature_store.model import (
    OFFLINE_LAYER,
    FeatureRef,
    FeatureStoreError,
    FeatureView,
    resolve_refs,
)

_ROW_ID = "__row_id"
_AVAILABLE_AT = "__available_at"


def conform(features: DataFrame, view: FeatureView) -> DataFrame:
    """The view's offline schema: entity key, as_of_date, then each declared feature cast to its
    declared type, in declaration order. A declared feature the job did not produce is an error."""
    key = view.entity.join_key
    missing = [c for c in (key, "as_of_date", *view.feature_names) if c not in features.columns]
    if missing:
        raise FeatureStoreError(
            f"{view.name}: the job's output lacks declared columns {missing} "
            f"(declared in feature_store/definitions.py)"
        )
    return features.select(
        F.col(key).cast("string").alias(key),
        F.col("as_of_date").cast("date").alias("as_of_date"),
        *(F.col(f.name).cast(f.dtype.spark_type).alias(f.name) for f in view.features),
    )


def available_at(as_of_date: Column) -> Column:
    """When a snapshot becomes usable: the day after its as_of_date, 00:00 in the session time
    zone (UTC: `audotics.spark.spark_session` sets it)."""
    return F.date_add(as_of_date, 1).cast("timestamp")


def point_in_time_join(
    entity_rows: DataFrame,
    features: DataFrame,
    view: FeatureView,
    feature_names: Iterable[str],
    *,
    timestamp_column: str = "event_timestamp",
) -> DataFrame:
    """`entity_rows` (the view's join key and `timestamp_column`, any other columns kept) with
    the named features of `view` as they were at each row's timestamp (module docstring rule),
    in columns named `<view>__<feature>` so that features of several views never collide."""
    key = view.entity.join_key
    missing = [c for c in (key, timestamp_column) if c not in entity_rows.columns]
    if missing:
        raise FeatureStoreError(
            f"entity rows for {view.name} need columns {missing}; they have {entity_rows.columns}"
        )
    names = list(feature_names)
    rows = entity_rows.withColumn(_ROW_ID, F.monotonically_increasing_id())
    ttl_seconds = int(view.ttl.total_seconds())
    candidates = features.select(
        F.col(key).alias(f"__{key}"),
        F.col("as_of_date").alias("__as_of_date"),
        available_at(F.col("as_of_date")).alias(_AVAILABLE_AT),
        *(F.col(name).alias(f"{view.name}__{name}") for name in names),
    )
    timestamp = F.col(timestamp_column)
    joined = rows.join(
        candidates,
        (F.col(key) == F.col(f"__{key}"))
        & (F.col(_AVAILABLE_AT) <= timestamp)
        & (timestamp < F.col(_AVAILABLE_AT) + F.make_dt_interval(secs=F.lit(ttl_seconds))),
        "left",
    )
    newest_first = Window.partitionBy(_ROW_ID).orderBy(F.col("__as_of_date").desc_nulls_last())
    return (
        joined.withColumn("__rank", F.row_number().over(newest_first))
        .where(F.col("__rank") == 1)
        .select(*entity_rows.columns, *(f"{view.name}__{name}" for name in names))
    )


def get_historical_features(
    spark: SparkSession,
    settings: Settings,
    entity_rows: DataFrame,
    feature_names: Iterable[str],
    *,
    timestamp_column: str = "event_timestamp",
) -> DataFrame:
    """A training set: `entity_rows` (each view's join key and `timestamp_column`) plus the
    requested features (`view:feature`, or bare names only one view declares), each
    point-in-time correct, in columns `<view>__<feature>`. Views of several entities mix freely
    (e.g. user and track features for user x track rows)."""
    refs = resolve_refs(FEATURE_VIEWS, feature_names, single_entity=False)
    result = entity_rows
    for view, names in _by_view(refs).items():
        features = read_table(spark, settings, OFFLINE_LAYER, view.table)
        result = point_in_time_join(
            result, features, view, names, timestamp_column=timestamp_column
        )
    return result


def _by_view(refs: list[FeatureRef]) -> dict[FeatureView, list[str]]:
    grouped: dict[FeatureView, list[str]] = {}
    for ref in refs:
        grouped.setdefault(ref.view, []).append(ref.feature.name)
    return grouped
