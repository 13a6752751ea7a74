"""features/track_features: one row per track of the catalog as of the snapshot date."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from feature_store.definitions import (
    AUDIO_FEATURES,
    LONGEST_WINDOW_DAYS,
    TRACK_FEATURES,
    TREND_DAYS,
    WINDOWS_DAYS,
)
from feature_store.offline import conform
from spark_jobs.features.aggregates import count_if, is_type, ratio, skip_rates
from spark_jobs.features.snapshot import (
    catalog_as_of,
    cutoff,
    days_before,
    events_for_snapshot,
    in_window,
)


def _previous_trend_window(as_of: dt.date) -> Column:
    """The TREND_DAYS days before the last TREND_DAYS days."""
    end = cutoff(as_of) - dt.timedelta(days=TREND_DAYS)
    return (F.col("ts") >= F.lit(end - dt.timedelta(days=TREND_DAYS))) & (F.col("ts") < F.lit(end))


def _activity(events: DataFrame, as_of: dt.date) -> DataFrame:
    """Per track: windowed plays, skips, likes and listeners; plays of the previous trend window."""
    plays = is_type("play")
    aggregates = [
        count_if(plays & _previous_trend_window(as_of)).alias(f"plays_prev_{TREND_DAYS}d")
    ]
    for days in WINDOWS_DAYS:
        window = in_window(as_of, days)
        aggregates += [
            count_if(window & plays).alias(f"plays_{days}d"),
            count_if(window & is_type("skip")).alias(f"skips_{days}d"),
            count_if(window & is_type("like")).alias(f"likes_{days}d"),
            F.count_distinct(F.when(window & plays, F.col("user_id"))).alias(
                f"unique_listeners_{days}d"
            ),
        ]
    return events.groupBy("track_id").agg(*aggregates)


def _artist_plays(events: DataFrame, catalog: DataFrame, as_of: dt.date) -> DataFrame:
    plays = events.where(is_type("play")).join(catalog.select("track_id", "artist_id"), "track_id")
    return plays.groupBy("artist_id").agg(
        *(count_if(in_window(as_of, days)).alias(f"artist_plays_{days}d") for days in WINDOWS_DAYS)
    )


def track_features(events: DataFrame, tracks: DataFrame, as_of: dt.date) -> DataFrame:
    """Track features as of `as_of` from silver events and tracks (SCD2).

    Every track of the catalog as of D gets a row (counts 0 without activity).
    """
    recent = events_for_snapshot(events, as_of, LONGEST_WINDOW_DAYS)
    catalog = catalog_as_of(tracks, as_of)
    activity = _activity(recent, as_of)
    artist_plays = _artist_plays(recent, catalog, as_of)
    counts = [c for c in activity.columns if c != "track_id"] + [
        c for c in artist_plays.columns if c != "artist_id"
    ]
    features = (
        catalog.select(
            "track_id", "artist_id", "genre", "duration_ms", "release_date", *AUDIO_FEATURES
        )
        .join(activity, "track_id", "left")
        .join(artist_plays, "artist_id", "left")
        .fillna(0, subset=counts)
        .withColumns(
            {
                f"play_trend_{TREND_DAYS}d": (F.col(f"plays_{TREND_DAYS}d") + 1)
                / (F.col(f"plays_prev_{TREND_DAYS}d") + 1),
                "days_since_release": days_before(as_of, F.col("release_date")),
                "as_of_date": F.lit(as_of),
            }
        )
        .withColumns(
            skip_rates()
            | {
                f"like_rate_{days}d": ratio(F.col(f"likes_{days}d"), F.col(f"plays_{days}d"))
                for days in WINDOWS_DAYS
            }
        )
    )
    return conform(features, TRACK_FEATURES)
