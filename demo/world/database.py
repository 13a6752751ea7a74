"""The app's operational database (schema `app`, docs/data-contracts.md section 1): created if
missing, then emptied and bulk-loaded with COPY in one transaction, so a reader sees the old
world or the new one, never a mix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import psycopg

from audotics import db
from audotics.settings import Settings
from demo.world.catalog import Catalog
from demo.world.errors import WorldError
from demo.world.vocab import AUDIO_FEATURES, COUNTRIES, GENRES

_GENRE_CHECK = "genre in ({})".format(", ".join(f"'{g}'" for g in GENRES))
_TIMES = "created_at timestamptz not null, updated_at timestamptz not null"
_FEATURES = ", ".join(f"{name} real not null" for name in AUDIO_FEATURES)

TABLES = ("users", "artists", "tracks", "playlists", "playlist_tracks")
COLUMNS_DDL = f"""
create schema if not exists app;
create table if not exists app.users (
    user_id uuid not null, username text not null, email text not null,
    country char(2) not null, birth_year int,
    subscription text not null check (subscription in ('free', 'premium')), {_TIMES});
create table if not exists app.artists (
    artist_id uuid not null, name text not null, country char(2) not null,
    genre text not null check ({_GENRE_CHECK}), {_TIMES});
create table if not exists app.tracks (
    track_id uuid not null, title text not null, artist_id uuid not null, album text not null,
    genre text not null check ({_GENRE_CHECK}), duration_ms int not null check (duration_ms > 0),
    release_date date not null, {_FEATURES}, {_TIMES});
create table if not exists app.playlists (
    playlist_id uuid not null, owner_user_id uuid not null, name text not null,
    is_public bool not null, {_TIMES});
create table if not exists app.playlist_tracks (
    playlist_id uuid not null, track_id uuid not null, position int not null,
    added_at timestamptz not null, updated_at timestamptz not null);
"""
# Keys and indexes are dropped before loading and built again after it: building them in one
# go is many times faster than maintaining them row by row (and checks every key once).
# (table, name, definition), parents' keys before the foreign keys that need them.
CONSTRAINTS = (
    ("users", "users_pkey", "primary key (user_id)"),
    ("users", "users_username_key", "unique (username)"),
    ("artists", "artists_pkey", "primary key (artist_id)"),
    ("tracks", "tracks_pkey", "primary key (track_id)"),
    ("playlists", "playlists_pkey", "primary key (playlist_id)"),
    ("playlist_tracks", "playlist_tracks_pkey", "primary key (playlist_id, track_id)"),
    ("tracks", "tracks_artist_id_fkey", "foreign key (artist_id) references app.artists"),
    ("playlists", "playlists_owner_user_id_fkey",
     "foreign key (owner_user_id) references app.users"),
    ("playlist_tracks", "playlist_tracks_playlist_id_fkey",
     "foreign key (playlist_id) references app.playlists"),
    ("playlist_tracks", "playlist_tracks_track_id_fkey",
     "foreign key (track_id) references app.tracks"),
)  # fmt: skip


def load_catalog(settings: Settings, catalog: Catalog) -> None:
    """Replace the rows of every `app` table with the catalog's."""
    try:
        conn = db.connect(settings)
    except psycopg.OperationalError as exc:
        raise WorldError(
            f"PostgreSQL for the app database is not reachable ({exc}): start it with "
            "`audotics services up`, or set AUDOTICS_DATABASE_URL"
        ) from exc
    with conn, conn.cursor() as cursor:
        cursor.execute(COLUMNS_DDL)
        for table, name, _ in reversed(CONSTRAINTS):
            cursor.execute(f"alter table app.{table} drop constraint if exists {name}")
        for table in TABLES:
            cursor.execute(f"drop index if exists app.{table}_updated_at")
        cursor.execute("truncate " + ", ".join(f"app.{t}" for t in TABLES))
        for table, columns, rows in _table_rows(catalog):
            with cursor.copy(f"copy app.{table} ({', '.join(columns)}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
        for table, name, definition in CONSTRAINTS:
            cursor.execute(f"alter table app.{table} add constraint {name} {definition}")
        for table in TABLES:  # ingestion extracts by updated_at
            cursor.execute(f"create index {table}_updated_at on app.{table} (updated_at)")


def _table_rows(catalog: Catalog) -> Iterable[tuple[str, Sequence[str], Iterable[tuple]]]:
    artists, tracks, users = catalog.artists, catalog.tracks, catalog.users
    playlists, entries = catalog.playlists, catalog.playlist_tracks
    countries, genres = np.array(COUNTRIES, dtype=object), np.array(GENRES, dtype=object)
    yield (
        "artists",
        ("artist_id", "name", "country", "genre", "created_at", "updated_at"),
        _rows(artists.ids, artists.names, countries[artists.country], genres[artists.genre],
              _time(artists.created_ms), _time(artists.updated_ms)),
    )  # fmt: skip
    yield (
        "tracks",
        ("track_id", "title", "artist_id", "album", "genre", "duration_ms", "release_date",
         *AUDIO_FEATURES, "created_at", "updated_at"),
        _rows(tracks.ids, tracks.titles, artists.ids[tracks.artist], tracks.albums,
              genres[tracks.genre], tracks.duration_ms, _date(tracks.release_ms),
              *tracks.sound.T, _time(tracks.created_ms), _time(tracks.updated_ms)),
    )  # fmt: skip
    birth_year = np.where(users.birth_year > 0, users.birth_year, None)
    yield (
        "users",
        ("user_id", "username", "email", "country", "birth_year", "subscription", "created_at",
         "updated_at"),
        _rows(users.ids, users.usernames, users.emails, countries[users.country], birth_year,
              np.where(users.premium, "premium", "free"), _time(users.created_ms),
              _time(users.updated_ms)),
    )  # fmt: skip
    yield (
        "playlists",
        ("playlist_id", "owner_user_id", "name", "is_public", "created_at", "updated_at"),
        _rows(playlists.ids, users.ids[playlists.owner], playlists.names, playlists.is_public,
              _time(playlists.created_ms), _time(playlists.updated_ms)),
    )  # fmt: skip
    yield (
        "playlist_tracks",
        ("playlist_id", "track_id", "position", "added_at", "updated_at"),
        _rows(playlists.ids[entries.playlist], tracks.ids[entries.track], entries.position,
              _time(entries.added_ms), _time(entries.updated_ms)),
    )  # fmt: skip


def _time(epoch_ms: np.ndarray) -> np.ndarray:
    return epoch_ms.astype("datetime64[ms]")


def _date(epoch_ms: np.ndarray) -> np.ndarray:
    return epoch_ms.astype("datetime64[ms]").astype("datetime64[D]")


def _rows(*columns: np.ndarray, batch: int = 50_000) -> Iterable[tuple]:
    """Rows of Python values, converted a batch at a time to bound memory."""
    for start in range(0, len(columns[0]), batch):
        yield from zip(*(_values(c[start : start + batch]) for c in columns), strict=True)


def _values(column: np.ndarray) -> list:
    """Python values psycopg adapts (not numpy scalars); times as ISO text PostgreSQL parses."""
    if column.dtype == np.dtype("datetime64[ms]"):
        return np.datetime_as_string(column, unit="ms", timezone="UTC").tolist()
    if column.dtype == np.dtype("datetime64[D]"):
        return np.datetime_as_string(column).tolist()
    return column.tolist()
