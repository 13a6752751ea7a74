"""The IO around the feature transforms: read silver, build the three features tables as of a
snapshot date, and replace that date's partition of each (so reruns are idempotent)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession

from audotics import lake
from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.lake.spark import read_table, write_table
from audotics.progress import progress
from audotics.settings import Settings
from feature_store.definitions import (
    INTERACTIONS,
    LONGEST_WINDOW_DAYS,
    TRACK_FEATURES,
    USER_FEATURES,
)
from feature_store.model import AS_OF_COLUMN, FeatureView
from spark_jobs.features.interactions import ConfidenceWeights, interactions
from spark_jobs.features.snapshot import events_for_snapshot
from spark_jobs.features.track_features import track_features
from spark_jobs.features.user_features import user_features

log = logging.getLogger(__name__)


class FeatureJobError(AudoticsError):
    """The feature job cannot run on the lake as it is; the message says why."""


@dataclass(frozen=True)
class TableWrite:
    table: str  # the name of the features table (features/<table>)
    version: int
    rows: int


def build_feature_tables(
    events: DataFrame, users: DataFrame, tracks: DataFrame, as_of: dt.date, settings: Settings
) -> dict[FeatureView, DataFrame]:
    """The three features tables as of `as_of`, keyed by the feature view each one is."""
    return {
        USER_FEATURES: user_features(events, users, tracks, as_of),
        TRACK_FEATURES: track_features(events, tracks, as_of),
        INTERACTIONS: interactions(
            events,
            tracks,
            as_of,
            weights=ConfidenceWeights.from_settings(settings),
            lookback_days=settings.interactions_lookback_days,
        ),
    }


def newest_event_date(settings: Settings) -> dt.date:
    """The newest event_date in silver/events: the default snapshot date of a manual build."""
    newest = lake.newest_partition(settings, tables.SILVER_EVENTS)
    if newest is None:
        raise FeatureJobError("silver/events has no events yet: run the ingestion first")
    return dt.date.fromisoformat(newest)


def run(spark: SparkSession, settings: Settings, as_of: dt.date, run_id: str) -> list[TableWrite]:
    """Build features as of `as_of` from the current silver snapshot and write them."""
    lookback = max(LONGEST_WINDOW_DAYS, settings.interactions_lookback_days)
    first_day = as_of - dt.timedelta(days=lookback - 1)
    # Only the lookback's partitions are read, once, and shared by the three tables.
    silver_events = read_table(
        spark,
        settings,
        tables.SILVER_EVENTS,
        partition_filter=f"event_date BETWEEN '{first_day}' AND '{as_of}'",
    )
    events = events_for_snapshot(silver_events, as_of, lookback).persist()
    users = read_table(spark, settings, tables.SILVER_USERS)
    tracks = read_table(spark, settings, tables.SILVER_TRACKS)
    commit_metadata = {"job": "build_features", "as_of_date": as_of.isoformat(), "run_id": run_id}
    writes = []
    features = build_feature_tables(events, users, tracks, as_of, settings)
    try:
        with progress("features", total=len(features), unit="table") as bar:
            for view, frame in features.items():
                bar.set_postfix_str(view.table.name)
                writes.append(_write(settings, view, frame, as_of, commit_metadata))
                bar.update()
    finally:
        events.unpersist()
    return writes


def _write(
    settings: Settings, view: FeatureView, frame: DataFrame, as_of: dt.date, metadata: dict
) -> TableWrite:
    """Replace the `as_of` partition of the view's table by `frame`."""
    version = write_table(
        frame,
        settings,
        view.table,
        mode="overwrite",
        predicate=f"{AS_OF_COLUMN} = '{as_of.isoformat()}'",
        metadata=metadata,
    )
    rows = rows_in_partition(settings, view.table, version, as_of)
    log.info("%s as of %s: %d rows (version %d)", view.table, as_of, rows, version)
    return TableWrite(view.table.name, version, rows)


def rows_in_partition(settings: Settings, table: tables.Table, version: int, as_of: dt.date) -> int:
    """Rows of one as_of_date at a table version, from the log's file statistics (no scan)."""
    files = pa.table(
        lake.open_table(settings, table, version=version).get_add_actions(flatten=True)
    )
    in_partition = pc.equal(files[f"partition.{AS_OF_COLUMN}"], pa.scalar(as_of, pa.date32()))
    return pc.sum(files.filter(in_partition)["num_records"]).as_py() or 0
