"""features/user_features: one row per user of the catalog as of the snapshot date."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from feature_store.definitions import LONGEST_WINDOW_DAYS, PROFILE_DAYS, USER_FEATURES, WINDOWS_DAYS
from feature_store.offline import conform
from spark_jobs.features.aggregates import category_counts, count_if, is_type, skip_rates, sum_if
from spark_jobs.features.snapshot import catalog_as_of, days_before, events_for_snapshot, in_window

HOURS_PER_DAY = 24


def _activity(events: DataFrame, as_of: dt.date) -> DataFrame:
    """Per user: windowed counts and listening time, distinct artists and genres played, and
    the time of the last event."""
    listened = is_type("play") | is_type("skip")
    profile_plays = is_type("play") & in_window(as_of, PROFILE_DAYS)
    aggregates = [
        F.max("ts").alias("last_ts"),
        F.count_distinct(F.when(profile_plays, F.col("artist_id"))).alias(
            f"distinct_artists_{PROFILE_DAYS}d"
        ),
        F.count_distinct(F.when(profile_plays, F.col("genre"))).alias(
            f"distinct_genres_{PROFILE_DAYS}d"
        ),
    ]
    for days in WINDOWS_DAYS:
        window = in_window(as_of, days)
        aggregates += [
            count_if(window & is_type("play")).alias(f"plays_{days}d"),
            count_if(window & is_type("skip")).alias(f"skips_{days}d"),
            count_if(window & is_type("like")).alias(f"likes_{days}d"),
            sum_if(window & listened, F.col("ms_played")).alias(f"listening_ms_{days}d"),
        ]
    return events.groupBy("user_id").agg(*aggregates)


def _profiles(plays: DataFrame) -> DataFrame:
    """Per user with plays: genre shares and top genre, hour-of-day shares and peak hour."""
    genres = category_counts(plays, "user_id", "genre").select(
        "user_id",
        F.transform_values("counts", lambda _, n: n / F.col("total")).alias(
            f"genre_affinity_{PROFILE_DAYS}d"
        ),
        F.col("top.category").alias(f"top_genre_{PROFILE_DAYS}d"),
        (-F.col("top.neg_count") / F.col("total")).alias(f"top_genre_share_{PROFILE_DAYS}d"),
    )
    hours = category_counts(plays.withColumn("hour", F.hour("ts")), "user_id", "hour").select(
        "user_id",
        F.transform(
            F.sequence(F.lit(0), F.lit(HOURS_PER_DAY - 1)),
            lambda hour: F.coalesce(F.element_at("counts", hour), F.lit(0)) / F.col("total"),
        ).alias(f"hour_profile_{PROFILE_DAYS}d"),
        F.col("top.category").alias(f"peak_hour_{PROFILE_DAYS}d"),
    )
    return genres.join(hours, "user_id", "full")


def user_features(
    events: DataFrame, users: DataFrame, tracks: DataFrame, as_of: dt.date
) -> DataFrame:
    """User features as of `as_of` from silver events, users and tracks (SCD2).

    Every user of the catalog as of D gets a row (counts 0 without activity). Plays of a track
    the catalog does not know as of D count as plays but not in the artist and genre profiles.
    """
    track_catalog = catalog_as_of(tracks, as_of).select("track_id", "artist_id", "genre")
    recent = events_for_snapshot(events, as_of, LONGEST_WINDOW_DAYS).join(
        track_catalog, "track_id", "left"
    )
    activity = _activity(recent, as_of)
    profile_plays = recent.where(is_type("play") & in_window(as_of, PROFILE_DAYS))
    counts = [c for c in activity.columns if c not in ("user_id", "last_ts")]
    features = (
        catalog_as_of(users, as_of)
        .select("user_id", "country", "created_at")
        .join(activity, "user_id", "left")
        .join(_profiles(profile_plays), "user_id", "left")
        .fillna(0, subset=counts)
        .withColumns(skip_rates())
        .withColumns(
            {
                "days_since_last_event": days_before(as_of, F.col("last_ts")),
                "tenure_days": days_before(as_of, F.col("created_at")),
                "as_of_date": F.lit(as_of),
            }
        )
    )
    return conform(features, USER_FEATURES)
