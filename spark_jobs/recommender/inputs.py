"""The inputs of the top-N lists besides the model: the tracks that may be recommended and the
users to list, with what the lists need to know about them.

- Tracks: the current catalog (silver/tracks, SCD2 `is_current`) with each track's artist and
  genre, and its audio features from the feature store (view `track_features` as of the
  model's snapshot date, through the `als_recommender` feature service): they place new tracks,
  which have no interactions yet, in users' lists. A track the snapshot does not know (added
  to the catalog after it) has unknown audio features (NaN).
- Users: the current silver/users with their country, and their taste, the most frequent genre
  of the tracks in the playlists they own (for users without history).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from feature_store.definitions import ALS_RECOMMENDER, TRACK_FEATURES
from feature_store.offline import read_snapshot

AUDIO = ALS_RECOMMENDER.projection(TRACK_FEATURES)


@dataclass(frozen=True)
class Tracks:
    track_ids: np.ndarray
    artist_ids: np.ndarray
    genres: np.ndarray
    audio: np.ndarray  # (tracks, len(AUDIO.features)) float64, raw values (NaN if unknown)


@dataclass(frozen=True)
class Users:
    user_ids: np.ndarray
    countries: np.ndarray
    tastes: np.ndarray  # top genre of the user's own playlists, "" if none


def read_tracks(settings: Settings, as_of: dt.date) -> Tracks:
    """The current catalog's tracks, with their audio features as of `as_of`."""
    catalog = lake.read_current(settings, tables.SILVER_TRACKS, ["track_id", "artist_id", "genre"])
    audio = read_snapshot(settings, AUDIO, as_of).rows
    # Sorted: a join's row order varies from run to run, and ties in the lists follow it.
    table = catalog.join(audio, "track_id", join_type="left outer").sort_by("track_id")
    values = np.column_stack(
        [table[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in AUDIO.features]
    )
    return Tracks(
        _strings(table, "track_id"), _strings(table, "artist_id"), _strings(table, "genre"), values
    )


def read_users(settings: Settings, tracks: Tracks) -> Users:
    table = lake.read_current(settings, tables.SILVER_USERS, ["user_id", "country"])
    user_ids = _strings(table, "user_id")
    taste = playlist_tastes(settings, tracks)
    tastes = np.array([taste.get(user, "") for user in user_ids], dtype=object)
    return Users(user_ids, _strings(table, "country"), tastes)


def playlist_tastes(settings: Settings, tracks: Tracks) -> dict[str, str]:
    """user_id -> the most frequent genre in their current playlists (ties: alphabetical)."""
    if not (
        lake.exists(settings, tables.SILVER_PLAYLISTS)
        and lake.exists(settings, tables.SILVER_PLAYLIST_TRACKS)
    ):
        return {}
    playlists = lake.read_current(
        settings, tables.SILVER_PLAYLISTS, ["playlist_id", "owner_user_id"]
    )
    entries = lake.read_current(
        settings, tables.SILVER_PLAYLIST_TRACKS, ["playlist_id", "track_id"]
    )
    genres = pa.table(
        {"track_id": tracks.track_ids.astype(str), "genre": tracks.genres.astype(str)}
    )
    counts = (
        entries.join(playlists, "playlist_id")
        .join(genres, "track_id")
        .group_by(["owner_user_id", "genre"])
        .aggregate([("track_id", "count")])
        .sort_by(
            [
                ("owner_user_id", "ascending"),
                ("track_id_count", "descending"),
                ("genre", "ascending"),
            ]
        )
    )
    taste: dict[str, str] = {}
    for user, genre in zip(
        counts["owner_user_id"].to_pylist(), counts["genre"].to_pylist(), strict=True
    ):
        taste.setdefault(user, genre)  # sorted: the first row per user is its top genre
    return taste


def _strings(table: pa.Table, column: str) -> np.ndarray:
    return np.asarray(table[column].fill_null("").to_pylist(), dtype=object)
