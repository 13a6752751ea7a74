"""features/interactions (feature view `interactions`): implicit-feedback confidence per
user x track, the training input.

    confidence = play_weight         x plays
               + completion_weight   x Σ over plays of min(ms_played / duration_ms, 1)
               + like_weight         x likes
               + playlist_add_weight x playlist_adds
               - skip_weight         x skips

over the events of the `interactions_lookback_days` days ending with the snapshot date; only
pairs with confidence > 0 are kept (net negative or zero evidence is no preference signal).
`duration_ms` comes from silver/tracks as of the snapshot; a play of a track without a known
positive duration adds no completion share.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audotics.settings import Settings
from feature_store.definitions import INTERACTIONS
from feature_store.offline import conform
from spark_jobs.features.aggregates import count_if, is_type, sum_if
from spark_jobs.features.snapshot import catalog_as_of, events_for_snapshot


@dataclass(frozen=True)
class ConfidenceWeights:
    """The formula's weights; `from_settings` for the configured ones (AUDOTICS_CONFIDENCE_*)."""

    play: float
    completion: float
    like: float
    playlist_add: float
    skip: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfidenceWeights:
        return cls(
            play=settings.confidence_play_weight,
            completion=settings.confidence_completion_weight,
            like=settings.confidence_like_weight,
            playlist_add=settings.confidence_playlist_add_weight,
            skip=settings.confidence_skip_weight,
        )


def interactions(
    events: DataFrame,
    tracks: DataFrame,
    as_of: dt.date,
    *,
    weights: ConfidenceWeights,
    lookback_days: int,
) -> DataFrame:
    durations = catalog_as_of(tracks, as_of).select("track_id", "duration_ms")
    completed_share = F.least(
        F.coalesce(F.col("ms_played"), F.lit(0)) / F.col("duration_ms"), F.lit(1.0)
    )
    plays = is_type("play")
    pairs = (
        events_for_snapshot(events, as_of, lookback_days)
        .join(durations, "track_id", "left")
        .groupBy("user_id", "track_id")
        .agg(
            count_if(plays).alias("plays"),
            count_if(is_type("skip")).alias("skips"),
            count_if(is_type("like")).alias("likes"),
            count_if(is_type("playlist_add")).alias("playlist_adds"),
            sum_if(plays & (F.col("duration_ms") > 0), completed_share).alias("completion"),
            F.max("ts").alias("last_ts"),
        )
    )
    confidence = (
        weights.play * F.col("plays")
        + weights.completion * F.col("completion")
        + weights.like * F.col("likes")
        + weights.playlist_add * F.col("playlist_adds")
        - weights.skip * F.col("skips")
    ).cast("double")
    return conform(
        pairs.withColumns({"confidence": confidence, "as_of_date": F.lit(as_of)}).where(
            F.col("confidence") > 0
        ),
        INTERACTIONS,
    )
