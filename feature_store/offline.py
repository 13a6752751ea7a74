"""The offline store: each view's Delta table (features/<view>), one row per entity key and
`as_of_date`. Read one snapshot as Arrow (`read_snapshot`: the recommender, the online store's
materialization), or build training sets with point-in-time joins in Spark.

Point-in-time rule: the snapshot as of day D holds data through the end of D, so it becomes
*available* at D+1 00:00 UTC. A row stamped t gets, for each view, the latest snapshot available
at t (as_of_date <= date(t) - 1, i.e. strictly before t's UTC day) and only while fresh
(t < D+1 00:00 + view.ttl); otherwise its features are null. No value from the future.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as pads
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from audotics import lake
from audotics.lake.spark import read_table
from audotics.settings import Settings
from feature_store.definitions import FEATURE_VIEWS
from feature_store.model import (
    AS_OF_COLUMN,
    FeatureRef,
    FeatureStoreError,
    FeatureView,
    Projection,
    resolve_refs,
)

_ROW_ID = "__row_id"
_AVAILABLE_AT = "__available_at"


# --- one snapshot, as Arrow ---------------------------------------------------------------------


@dataclass(frozen=True)
class OfflineSnapshot:
    """One view's rows as of one date, read from one version of its table."""

    view: FeatureView
    as_of: dt.date
    table_version: int
    rows: pa.Table  # the view's join keys, then the features read


def newest_as_of(settings: Settings, view: FeatureView) -> dt.date:
    """The newest snapshot date of the view's table."""
    newest = lake.newest_partition(settings, view.table)
    if newest is None:
        raise FeatureStoreError(f"{view.table} has no snapshot yet: run `audotics features build`")
    return dt.date.fromisoformat(newest)


def read_snapshot(
    settings: Settings,
    features: FeatureView | Projection,
    as_of: dt.date | None = None,
    *,
    version: int | None = None,
) -> OfflineSnapshot:
    """The snapshot as of `as_of` (default: the newest) of a view, or of the features of it that
    a projection (a feature service's entry) names, at table `version` (default: the current
    one). Pinning the version lets several readers of one run see the same rows even if the
    feature job rewrites the partition meanwhile."""
    projection = features if isinstance(features, Projection) else features.select()
    view = projection.view
    if as_of is None:
        if version is not None:  # "newest" is read from the current log only
            raise FeatureStoreError(f"{view.table}: name the as_of date of version {version}")
        as_of = newest_as_of(settings, view)
    # Pinned after as_of was chosen: a later version still holds that date's snapshot.
    version = lake.version(settings, view.table) if version is None else version
    if version is None:
        raise FeatureStoreError(f"{view.table} does not exist yet: run `audotics features build`")
    rows = lake.read_arrow(
        settings,
        view.table,
        version=version,
        columns=[*view.join_keys, *projection.features],
        filter=pads.field(AS_OF_COLUMN) == pa.scalar(as_of, pa.date32()),
    )
    if rows.num_rows == 0:
        raise FeatureStoreError(f"{view.table} has no rows as of {as_of} (version {version})")
    return OfflineSnapshot(view, as_of, version, rows)


# --- training sets, with Spark ------------------------------------------------------------------


def conform(features: DataFrame, view: FeatureView) -> DataFrame:
    """The view's offline schema: entity keys, as_of_date, then each declared feature cast to its
    declared type, in declaration order. A declared feature the job did not produce is an error."""
    declared = (*view.join_keys, AS_OF_COLUMN, *view.feature_names)
    missing = [c for c in declared if c not in features.columns]
    if missing:
        raise FeatureStoreError(
            f"{view.name}: the job's output lacks declared columns {missing} "
            f"(declared in feature_store/definitions.py)"
        )
    return features.select(
        *(F.col(key).cast("string").alias(key) for key in view.join_keys),
        F.col(AS_OF_COLUMN).cast("date").alias(AS_OF_COLUMN),
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
    """`entity_rows` (the view's join keys and `timestamp_column`, any other columns kept) with
    the named features of `view` as they were at each row's timestamp (module docstring rule),
    in columns named `<view>__<feature>` so that features of several views never collide."""
    keys = view.join_keys
    missing = [c for c in (*keys, timestamp_column) if c not in entity_rows.columns]
    if missing:
        raise FeatureStoreError(
            f"entity rows for {view.name} need columns {missing}; they have {entity_rows.columns}"
        )
    names = list(feature_names)
    rows = entity_rows.withColumn(_ROW_ID, F.monotonically_increasing_id())
    ttl_seconds = int(view.ttl.total_seconds())
    candidates = features.select(
        *(F.col(key).alias(f"__{key}") for key in keys),
        F.col(AS_OF_COLUMN).alias("__as_of_date"),
        available_at(F.col(AS_OF_COLUMN)).alias(_AVAILABLE_AT),
        *(F.col(name).alias(f"{view.name}__{name}") for name in names),
    )
    timestamp = F.col(timestamp_column)
    same_entity = functools.reduce(operator.and_, [F.col(key) == F.col(f"__{key}") for key in keys])
    joined = rows.join(
        candidates,
        same_entity
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
    """A training set: `entity_rows` (each view's join keys and `timestamp_column`) plus the
    requested features (`view:feature`, or bare names only one view declares), each
    point-in-time correct, in columns `<view>__<feature>`. Views of several entities mix freely
    (e.g. user and track features for user x track rows)."""
    refs = resolve_refs(FEATURE_VIEWS, feature_names, single_entity=False)
    result = entity_rows
    for view, names in _by_view(refs).items():
        features = read_table(spark, settings, view.table)
        result = point_in_time_join(
            result, features, view, names, timestamp_column=timestamp_column
        )
    return result


def _by_view(refs: list[FeatureRef]) -> dict[FeatureView, list[str]]:
    grouped: dict[FeatureView, list[str]] = {}
    for ref in refs:
        grouped.setdefault(ref.view, []).append(ref.feature.name)
    return grouped
