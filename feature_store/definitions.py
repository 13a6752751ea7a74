"""Every feature, declared as code: the offline tables' columns, the online vectors, the
features the recommender reads (its feature service) and the README's feature tables all come
from here. Windows end at the snapshot date D inclusive: the 7-day window holds the events of
days D-6 .. D (UTC), never an event at or after D+1 00:00."""

from __future__ import annotations

import datetime as dt

from audotics.lake import tables
from feature_store.model import Dtype, Entity, Feature, FeatureService, FeatureView

OWNER = "data-platform"
SOURCE_JOB = "spark_jobs/build_features.py"
WINDOWS_DAYS = (7, 28, 90)
LONGEST_WINDOW_DAYS = max(WINDOWS_DAYS)
# Profiles (genres, hours, artists) use the longest window: short ones are too sparse.
PROFILE_DAYS = LONGEST_WINDOW_DAYS
TREND_DAYS = 7

USER = Entity("user", join_key="user_id", description="A listener (app.users).")
TRACK = Entity("track", join_key="track_id", description="A track of the catalog (app.tracks).")


def per_window(name: str, dtype: Dtype, description: str) -> tuple[Feature, ...]:
    """`<name>_<days>d` for every window; `{days}` in the description is the window length."""
    return tuple(
        Feature(f"{name}_{days}d", dtype, description.format(days=days)) for days in WINDOWS_DAYS
    )


AUDIO_FEATURES = (
    "danceability",
    "energy",
    "valence",
    "tempo",
    "acousticness",
    "instrumentalness",
    "loudness",
)

USER_FEATURES = FeatureView(
    name="user_features",
    entities=(USER,),
    table=tables.USER_FEATURES,
    owner=OWNER,
    source_job=SOURCE_JOB,
    ttl=dt.timedelta(days=2),
    description="Listening behaviour of every user in the catalog as of the snapshot date.",
    features=(
        *per_window("plays", Dtype.INT64, "`play` events in the last {days} days."),
        *per_window("skips", Dtype.INT64, "`skip` events in the last {days} days."),
        *per_window("likes", Dtype.INT64, "`like` events in the last {days} days."),
        *per_window(
            "listening_ms",
            Dtype.INT64,
            "Milliseconds listened (ms_played of plays and skips) in the last {days} days.",
        ),
        *per_window(
            "skip_rate",
            Dtype.FLOAT64,
            "skips / (plays + skips) in the last {days} days; null without either.",
        ),
        Feature(
            f"distinct_artists_{PROFILE_DAYS}d",
            Dtype.INT64,
            f"Artists of the tracks played in the last {PROFILE_DAYS} days.",
        ),
        Feature(
            f"distinct_genres_{PROFILE_DAYS}d",
            Dtype.INT64,
            f"Genres of the tracks played in the last {PROFILE_DAYS} days.",
        ),
        Feature(
            f"genre_affinity_{PROFILE_DAYS}d",
            Dtype.STRING_TO_FLOAT64,
            f"Share of the plays of the last {PROFILE_DAYS} days per track genre "
            "(genre -> share, shares sum to 1); null without plays.",
        ),
        Feature(
            f"top_genre_{PROFILE_DAYS}d",
            Dtype.STRING,
            f"The most played genre in the last {PROFILE_DAYS} days (ties: alphabetical first).",
        ),
        Feature(
            f"top_genre_share_{PROFILE_DAYS}d",
            Dtype.FLOAT64,
            f"Share of the plays of the last {PROFILE_DAYS} days in the top genre.",
        ),
        Feature(
            f"hour_profile_{PROFILE_DAYS}d",
            Dtype.FLOAT64_LIST,
            f"24 shares of the plays of the last {PROFILE_DAYS} days by UTC hour of day "
            "(index 0 = 00:00-00:59); null without plays.",
        ),
        Feature(
            f"peak_hour_{PROFILE_DAYS}d",
            Dtype.INT64,
            f"UTC hour of day with the most plays in the last {PROFILE_DAYS} days "
            "(ties: earliest hour).",
        ),
        Feature(
            "days_since_last_event",
            Dtype.INT64,
            "Days from the UTC date of the user's last event to D (0: active on D); null if "
            f"no event in the last {LONGEST_WINDOW_DAYS} days (the lookback of the job).",
        ),
        Feature("country", Dtype.STRING, "Country of the user's account as of D."),
        Feature("tenure_days", Dtype.INT64, "Days from the account's created_at (UTC date) to D."),
    ),
)

TRACK_FEATURES = FeatureView(
    name="track_features",
    entities=(TRACK,),
    table=tables.TRACK_FEATURES,
    owner=OWNER,
    source_job=SOURCE_JOB,
    ttl=dt.timedelta(days=2),
    description="Popularity and audio profile of every track of the catalog as of the snapshot "
    "date.",
    features=(
        *per_window("plays", Dtype.INT64, "`play` events of the track in the last {days} days."),
        Feature(
            f"plays_prev_{TREND_DAYS}d",
            Dtype.INT64,
            f"`play` events in the {TREND_DAYS} days before the last {TREND_DAYS} "
            f"(days D-{2 * TREND_DAYS - 1} .. D-{TREND_DAYS}).",
        ),
        Feature(
            f"play_trend_{TREND_DAYS}d",
            Dtype.FLOAT64,
            f"(plays_{TREND_DAYS}d + 1) / (plays_prev_{TREND_DAYS}d + 1): above 1 rising, "
            "below 1 falling (the +1 keeps new tracks finite).",
        ),
        *per_window(
            "skip_rate",
            Dtype.FLOAT64,
            "skips / (plays + skips) in the last {days} days; null without either.",
        ),
        *per_window(
            "like_rate", Dtype.FLOAT64, "likes / plays in the last {days} days; null without plays."
        ),
        *per_window(
            "unique_listeners", Dtype.INT64, "Distinct users who played it in the last {days} days."
        ),
        Feature("artist_id", Dtype.STRING, "The track's artist as of D."),
        *per_window(
            "artist_plays",
            Dtype.INT64,
            "`play` events of all tracks of the track's artist in the last {days} days.",
        ),
        Feature("genre", Dtype.STRING, "The track's genre as of D."),
        Feature("duration_ms", Dtype.INT64, "Track length in milliseconds."),
        Feature(
            "days_since_release",
            Dtype.INT64,
            "Days from release_date to D (negative: pre-release).",
        ),
        *(
            Feature(name, Dtype.FLOAT64, f"Audio feature `{name}` from silver/tracks as of D.")
            for name in AUDIO_FEATURES
        ),
    ),
)

INTERACTIONS = FeatureView(
    name="interactions",
    entities=(USER, TRACK),
    table=tables.INTERACTIONS,  # its catalog entry declares the schema too: they must agree
    owner=OWNER,
    source_job=SOURCE_JOB,
    ttl=dt.timedelta(days=2),
    description="Implicit-feedback evidence of every user x track pair with positive "
    "confidence: the ALS training input.",
    # A training input, not a serving one: millions of pairs no app looks up one by one.
    online=False,
    features=(
        Feature(
            "confidence",
            Dtype.FLOAT64,
            "Play, completion, like and playlist-add evidence minus skips, weighted by the "
            "AUDOTICS_CONFIDENCE_* settings over the AUDOTICS_INTERACTIONS_LOOKBACK_DAYS days "
            "up to D; always > 0.",
        ),
        Feature("plays", Dtype.INT64, "`play` events of the pair in the lookback."),
        Feature("skips", Dtype.INT64, "`skip` events of the pair in the lookback."),
        Feature("likes", Dtype.INT64, "`like` events of the pair in the lookback."),
        Feature("playlist_adds", Dtype.INT64, "`playlist_add` events of the pair in the lookback."),
        Feature("last_ts", Dtype.TIMESTAMP, "Time of the pair's latest event in the lookback."),
    ),
)

FEATURE_VIEWS: dict[str, FeatureView] = {
    view.name: view for view in (USER_FEATURES, TRACK_FEATURES, INTERACTIONS)
}

ALS_RECOMMENDER = FeatureService(
    name="als_recommender",
    description="What ALS training and its batch lists read: the interactions it factorizes, "
    "and the audio features that place new tracks (no interactions yet) in users' lists.",
    projections=(
        INTERACTIONS.select("confidence", "last_ts"),
        TRACK_FEATURES.select(*AUDIO_FEATURES),
    ),
)
FEATURE_SERVICES: dict[str, FeatureService] = {ALS_RECOMMENDER.name: ALS_RECOMMENDER}
