"""What recommendations need from the current catalog (silver, SCD2 `is_current` rows):
each track's artist, genre and audio features; each user's country; each user's taste, i.e.
the most frequent genre of the tracks in the playlists they own (for users without history)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.settings import Settings
from feature_store.definitions import AUDIO_FEATURES

CURRENT = pc.field("is_current")


@dataclass(frozen=True)
class Tracks:
    track_ids: np.ndarray
    artist_ids: np.ndarray
    genres: np.ndarray
    audio: np.ndarray  # (tracks, len(AUDIO_FEATURES)) float64, raw values (NaN if unknown)


@dataclass(frozen=True)
class Users:
    user_ids: np.ndarray
    countries: np.ndarray
    tastes: np.ndarray  # top genre of the user's own playlists, "" if none


def read_tracks(settings: Settings) -> Tracks:
    columns = ["track_id", "artist_id", "genre", *AUDIO_FEATURES]
    table = lake.read_arrow(settings, "silver", "tracks", columns=columns, filter=CURRENT)
    audio = np.column_stack(
        [table[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in AUDIO_FEATURES]
    )
    return Tracks(
        _strings(table, "track_id"), _strings(table, "artist_id"), _strings(table, "genre"), audio
    )


def read_users(settings: Settings, tracks: Tracks) -> Users:
    table = lake.read_arrow(
        settings, "silver", "users", columns=["user_id", "country"], filter=CURRENT
    )
    user_ids = _strings(table, "user_id")
    taste = playlist_tastes(settings, tracks)
    tastes = np.array([taste.get(user, "") for user in user_ids], dtype=object)
    return Users(user_ids, _strings(table, "country"), tastes)


def playlist_tastes(settings: Settings, tracks: Tracks) -> dict[str, str]:
    """user_id -> the most frequent genre in their current playlists (ties: alphabetical)."""
    if not (
        lake.exists(settings, "silver", "playlists")
        and lake.exists(settings, "silver", "playlist_tracks")
    ):
        return {}
    playlists = lake.read_arrow(
        settings, "silver", "playlists", columns=["playlist_id", "owner_user_id"], filter=CURRENT
    )
    entries = lake.read_arrow(
        settings, "silver", "playlist_tracks", columns=["playlist_id", "track_id"], filter=CURRENT
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
