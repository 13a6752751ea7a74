"""The catalog of the world as columns: artists, tracks, users, playlists and their tracks (the
rows of the app database) plus the hidden traits that drive listening (track popularity, each
user's genre taste and favourite artists, activity and usual device). Pure: a spec and a seed in,
arrays out; `database.py` loads the rows.

The catalog is the app's state at the world's end: users and tracks created during the
generated days are in it, with `created_at` inside those days."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from demo.world.formats import MS_PER_DAY, MS_PER_HOUR, uuid_strings
from demo.world.pools import Pool, choose, choose_per_row
from demo.world.spec import WorldSpec
from demo.world.vocab import (
    ADJECTIVES,
    COUNTRY_WEIGHTS,
    DEVICE_WEIGHTS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    GENRE_DURATION_S,
    GENRE_POPULARITY,
    GENRE_SOUND,
    GENRES,
    LAST_NAMES,
    NOUNS,
    PLAYLIST_MOODS,
    SOUND_HIGH,
    SOUND_LOW,
    SOUND_SPREAD,
)

CATALOG_STREAM = 1  # RNG stream of the catalog (events use others)
TRACK_POPULARITY_ZIPF = 1.0  # popularity of the track of rank r is 1 / r**this
ARTIST_POPULARITY_ZIPF = 0.8
GENRE_CROSSOVER = 0.15  # share of tracks outside their artist's genre
ALBUM_SIZE = 10
NEW_RELEASE_SHARE = 0.05  # share of albums released during the generated days
NEW_USER_SHARE = 0.10  # share of users who sign up during the generated days
TASTE_CONCENTRATION = 3.0  # Dirichlet total: low = few dominant genres per user
FAVOURITE_ARTISTS = 5
PLAYLISTS_PER_USER = 0.7
PLAYLIST_TRACKS_MEAN = 15
PLAYLIST_FAVOURITE_SHARE = 0.3  # playlist entries by the owner's favourite artists
PUBLIC_PLAYLIST_SHARE = 0.6
PREMIUM_SHARE = 0.35
NO_BIRTH_YEAR_SHARE = 0.15
UPDATED_SHARE = {"users": 0.30, "artists": 0.20, "tracks": 0.10, "playlist_tracks": 0.05}
OLDEST_RELEASE_YEARS = 60


@dataclass(frozen=True)
class Artists:
    ids: np.ndarray
    names: np.ndarray
    country: np.ndarray  # index into COUNTRIES
    genre: np.ndarray  # index into GENRES
    created_ms: np.ndarray
    updated_ms: np.ndarray


@dataclass(frozen=True)
class Tracks:
    ids: np.ndarray
    titles: np.ndarray
    artist: np.ndarray  # index into artists
    albums: np.ndarray
    genre: np.ndarray
    duration_ms: np.ndarray
    release_ms: np.ndarray  # midnight UTC of the release date
    sound: np.ndarray  # (tracks, AUDIO_FEATURES)
    created_ms: np.ndarray
    updated_ms: np.ndarray
    popularity: np.ndarray  # hidden: Zipf weight


@dataclass(frozen=True)
class Users:
    ids: np.ndarray
    usernames: np.ndarray
    emails: np.ndarray
    country: np.ndarray
    birth_year: np.ndarray  # 0 = not given
    premium: np.ndarray
    created_ms: np.ndarray
    updated_ms: np.ndarray
    taste: np.ndarray  # hidden: (users, GENRES) genre shares, each row sums to 1
    favourite_artists: np.ndarray  # hidden: (users, FAVOURITE_ARTISTS) artist indexes
    activity: np.ndarray  # hidden: relative number of sessions
    device: np.ndarray  # hidden: usual device, index into DEVICES


@dataclass(frozen=True)
class Playlists:
    ids: np.ndarray
    owner: np.ndarray  # index into users
    names: np.ndarray
    is_public: np.ndarray
    genre: np.ndarray  # hidden: what the playlist is about
    created_ms: np.ndarray
    updated_ms: np.ndarray


@dataclass(frozen=True)
class PlaylistTracks:
    playlist: np.ndarray
    track: np.ndarray
    position: np.ndarray  # 1-based, in order of addition
    added_ms: np.ndarray
    updated_ms: np.ndarray


@dataclass(frozen=True)
class Catalog:
    spec: WorldSpec
    artists: Artists
    tracks: Tracks
    users: Users
    playlists: Playlists
    playlist_tracks: PlaylistTracks

    def row_counts(self) -> dict[str, int]:
        return {
            "users": len(self.users.ids),
            "artists": len(self.artists.ids),
            "tracks": len(self.tracks.ids),
            "playlists": len(self.playlists.ids),
            "playlist_tracks": len(self.playlist_tracks.track),
        }


def build_catalog(spec: WorldSpec) -> Catalog:
    rngs = [np.random.default_rng([spec.seed, CATALOG_STREAM, part]) for part in range(5)]
    artist_genre, artist_popularity = _artist_traits(spec, rngs[0])
    tracks = _tracks(spec, rngs[1], artist_genre, artist_popularity)
    artists = _artists(spec, rngs[0], artist_genre, tracks)
    users = _users(spec, rngs[2], artist_genre, artist_popularity)
    playlists = _playlists(spec, rngs[3], users)
    playlist_tracks = _playlist_tracks(spec, rngs[4], playlists, users, tracks)
    # A playlist changes whenever a track is added to it.
    last_change = playlists.created_ms.copy()
    np.maximum.at(last_change, playlist_tracks.playlist, playlist_tracks.added_ms)
    playlists = replace(playlists, updated_ms=last_change)
    return Catalog(spec, artists, tracks, users, playlists, playlist_tracks)


# --- helpers -------------------------------------------------------------------------------------


def _zipf_weights(rng: np.random.Generator, score: np.ndarray, exponent: float) -> np.ndarray:
    """Zipf weights by rank of `score` (highest first; ties broken at random)."""
    order = np.lexsort((rng.random(len(score)), -score))
    ranks = np.empty(len(score), dtype=np.int64)
    ranks[order] = np.arange(1, len(score) + 1)
    return 1.0 / ranks.astype(float) ** exponent


def _word_pairs(
    rng: np.random.Generator,
    first: tuple[str, ...],
    second: tuple[str, ...],
    count: int,
    template: str,
) -> np.ndarray:
    a = np.array(first, dtype=object)[rng.integers(0, len(first), count)]
    b = np.array(second, dtype=object)[rng.integers(0, len(second), count)]
    return np.array([template.format(x, y) for x, y in zip(a, b, strict=True)], dtype=object)


def _capitalised(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w.capitalize() for w in words)


def _updated(
    rng: np.random.Generator, created_ms: np.ndarray, share: float, end_ms: int
) -> np.ndarray:
    """`updated_at`: equal to `created_at`, or for `share` of rows a later time before the end."""
    changed = rng.random(len(created_ms)) < share
    later = created_ms + (rng.random(len(created_ms)) * (end_ms - 1 - created_ms)).astype(np.int64)
    return np.where(changed, np.maximum(later, created_ms), created_ms)


# --- tables --------------------------------------------------------------------------------------


def _artist_traits(spec: WorldSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    genre = choose(rng, GENRE_POPULARITY, spec.artists)
    popularity = _zipf_weights(rng, rng.random(spec.artists), ARTIST_POPULARITY_ZIPF)
    return genre, popularity


def _artists(
    spec: WorldSpec, rng: np.random.Generator, genre: np.ndarray, tracks: Tracks
) -> Artists:
    count = spec.artists
    solo = rng.random(count) < 0.5
    person = _word_pairs(rng, FIRST_NAMES, LAST_NAMES, count, "{} {}")
    band = _word_pairs(rng, _capitalised(ADJECTIVES), _capitalised(NOUNS), count, "The {} {}s")
    # An artist joins the catalog shortly before their first track does.
    first_track = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(first_track, tracks.artist, tracks.created_ms)
    lead = (rng.random(count) * 30 * MS_PER_DAY).astype(np.int64)
    created = np.maximum(first_track - lead, spec.launch_ms)
    return Artists(
        ids=uuid_strings(rng, count),
        names=np.where(solo, person, band),
        country=choose(rng, COUNTRY_WEIGHTS, count),
        genre=genre,
        created_ms=created,
        updated_ms=_updated(rng, created, UPDATED_SHARE["artists"], spec.end_ms),
    )


def _tracks(
    spec: WorldSpec,
    rng: np.random.Generator,
    artist_genre: np.ndarray,
    artist_popularity: np.ndarray,
) -> Tracks:
    count = spec.tracks
    # Every artist has a track; popular artists have more.
    extra = choose(rng, artist_popularity**0.7, count - spec.artists)
    artist = np.sort(np.concatenate([np.arange(spec.artists), extra]), kind="stable")
    album, album_release, album_created = _albums(spec, rng, artist)
    album_names = _word_pairs(
        rng, _capitalised(ADJECTIVES), _capitalised(NOUNS), len(album_release), "{} {}"
    )

    crossover = rng.random(count) < GENRE_CROSSOVER
    genre = np.where(crossover, choose(rng, GENRE_POPULARITY, count), artist_genre[artist])
    duration_s = GENRE_DURATION_S[genre] * rng.lognormal(0.0, 0.25, count)
    sound = GENRE_SOUND[genre] + rng.normal(size=(count, len(SOUND_SPREAD))) * SOUND_SPREAD
    score = artist_popularity[artist] * rng.lognormal(0.0, 0.8, count)
    created = album_created[album] + (rng.random(count) * MS_PER_HOUR).astype(np.int64)
    created = np.minimum(created, spec.end_ms - 1)
    titles = _word_pairs(rng, _capitalised(ADJECTIVES), _capitalised(NOUNS), count, "{} {}")
    return Tracks(
        ids=uuid_strings(rng, count),
        titles=titles,
        artist=artist,
        albums=album_names[album],
        genre=genre,
        duration_ms=(np.clip(duration_s, 45, 1800) * 1000).astype(np.int64),
        release_ms=album_release[album],
        sound=np.clip(sound, SOUND_LOW, SOUND_HIGH).round(3),
        created_ms=created,
        updated_ms=_updated(rng, created, UPDATED_SHARE["tracks"], spec.end_ms),
        popularity=_zipf_weights(rng, score, TRACK_POPULARITY_ZIPF),
    )


def _albums(
    spec: WorldSpec, rng: np.random.Generator, artist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group each artist's tracks (sorted by artist) into albums. Returns each track's album and
    per album its release (midnight UTC) and when it entered the catalog."""
    first_of_artist = np.searchsorted(artist, artist)
    album_key = (
        artist * (len(artist) + 1) + (np.arange(len(artist)) - first_of_artist) // ALBUM_SIZE
    )
    _, album = np.unique(album_key, return_inverse=True)
    albums = int(album.max()) + 1
    # Back catalog: released over decades, more of it recent; enters the catalog at launch
    # (the initial import) or a day or two after a later release.
    age_days = np.minimum(rng.exponential(8 * 365, albums), OLDEST_RELEASE_YEARS * 365)
    release = spec.start_ms - (1 + age_days.astype(np.int64)) * MS_PER_DAY
    imported = spec.launch_ms + (rng.random(albums) * 60 * MS_PER_DAY).astype(np.int64)
    added = release + (rng.random(albums) * 2 * MS_PER_DAY).astype(np.int64)
    created = np.minimum(np.where(release < spec.launch_ms, imported, added), spec.start_ms - 1)
    # New releases come out at midnight of one of the generated days.
    new = rng.random(albums) < NEW_RELEASE_SHARE
    new[0] = False  # the world always starts with a back catalog
    new_release = spec.start_ms + rng.integers(0, spec.days, albums) * MS_PER_DAY
    release = np.where(new, new_release, release)
    created = np.where(new, new_release, created)
    return album, release, created


def _users(
    spec: WorldSpec,
    rng: np.random.Generator,
    artist_genre: np.ndarray,
    artist_popularity: np.ndarray,
) -> Users:
    count = spec.users
    new = rng.random(count) < NEW_USER_SHARE
    new[0] = False  # someone is listening from the first hour
    # Sign-ups grow over time: more of the existing users joined recently.
    existing = spec.launch_ms + (
        np.sqrt(rng.random(count)) * (spec.start_ms - spec.launch_ms)
    ).astype(np.int64)
    joining = spec.start_ms + (rng.random(count) * (spec.end_ms - spec.start_ms)).astype(np.int64)
    created = np.sort(np.where(new, joining, existing))  # user numbers follow sign-up order

    usernames = _word_pairs(rng, ADJECTIVES, NOUNS, count, "{}_{}")
    usernames = np.array([f"{name}{i + 1}" for i, name in enumerate(usernames)], dtype=object)
    domains = np.array(EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(EMAIL_DOMAINS), count)]
    birth_year = np.clip(rng.normal(1992, 11, count), 1940, spec.start_date.year - 13)
    taste = rng.dirichlet(TASTE_CONCENTRATION * GENRE_POPULARITY, count) + 1e-4
    taste /= taste.sum(axis=1, keepdims=True)
    return Users(
        ids=uuid_strings(rng, count),
        usernames=usernames,
        emails=usernames + "@" + domains,
        country=choose(rng, COUNTRY_WEIGHTS, count),
        birth_year=np.where(
            rng.random(count) < NO_BIRTH_YEAR_SHARE, 0, birth_year.astype(np.int64)
        ),
        premium=rng.random(count) < PREMIUM_SHARE,
        created_ms=created,
        updated_ms=_updated(rng, created, UPDATED_SHARE["users"], spec.end_ms),
        taste=taste,
        favourite_artists=_favourite_artists(spec, rng, taste, artist_genre, artist_popularity),
        activity=rng.lognormal(0.0, 1.0, count),
        device=choose(rng, DEVICE_WEIGHTS, count),
    )


def _favourite_artists(
    spec: WorldSpec,
    rng: np.random.Generator,
    taste: np.ndarray,
    artist_genre: np.ndarray,
    artist_popularity: np.ndarray,
) -> np.ndarray:
    """Popular artists of each user's favourite genres (any artist if a genre has none)."""
    draws = len(taste) * FAVOURITE_ARTISTS
    genre = choose_per_row(rng, np.cumsum(np.repeat(taste, FAVOURITE_ARTISTS, axis=0), axis=1))
    everyone = np.full(spec.artists, spec.launch_ms)
    by_genre = Pool.build(artist_genre, everyone, artist_popularity, len(GENRES), spec.launch_ms)
    anyone = Pool.build(np.zeros(spec.artists), everyone, artist_popularity, 1, spec.launch_ms)
    at = np.full(draws, spec.end_ms)
    artist, found = by_genre.draw(genre, at, rng.random(draws))
    fallback, _ = anyone.draw(np.zeros(draws), at, rng.random(draws))
    return np.where(found, artist, fallback).reshape(len(taste), FAVOURITE_ARTISTS)


def _playlists(spec: WorldSpec, rng: np.random.Generator, users: Users) -> Playlists:
    owner = np.repeat(np.arange(len(users.ids)), rng.poisson(PLAYLISTS_PER_USER, len(users.ids)))
    count = len(owner)
    genre = choose_per_row(rng, np.cumsum(users.taste[owner], axis=1))
    moods = np.array(PLAYLIST_MOODS, dtype=object)[rng.integers(0, len(PLAYLIST_MOODS), count)]
    genre_titles = np.array([g.title() for g in GENRES], dtype=object)[genre]
    owner_created = users.created_ms[owner]
    # Most playlists are made soon after signing up.
    created = owner_created + (rng.random(count) ** 2 * (spec.end_ms - 1 - owner_created)).astype(
        np.int64
    )
    return Playlists(
        ids=uuid_strings(rng, count),
        owner=owner,
        names=moods + " " + genre_titles,
        is_public=rng.random(count) < PUBLIC_PLAYLIST_SHARE,
        genre=genre,
        created_ms=created,
        updated_ms=created,  # until tracks are added (build_catalog)
    )


def _playlist_tracks(
    spec: WorldSpec, rng: np.random.Generator, playlists: Playlists, users: Users, tracks: Tracks
) -> PlaylistTracks:
    sizes = np.minimum(1 + rng.poisson(PLAYLIST_TRACKS_MEAN, len(playlists.ids)), spec.tracks)
    playlist = np.repeat(np.arange(len(playlists.ids)), sizes)
    count = len(playlist)
    created = playlists.created_ms[playlist]
    added = created + (rng.random(count) * (spec.end_ms - 1 - created)).astype(np.int64)

    # Mostly the playlist's genre, partly the owner's favourite artists; only released tracks.
    pools = TrackPools.build(tracks, spec.launch_ms)
    owner = playlists.owner[playlist]
    favourite = users.favourite_artists[owner, rng.integers(0, FAVOURITE_ARTISTS, count)]
    from_favourite = rng.random(count) < PLAYLIST_FAVOURITE_SHARE
    track = pools.draw(rng, playlists.genre[playlist], favourite, from_favourite, added)

    # One row per (playlist, track): keep the first addition.
    order = np.lexsort((added, track, playlist))
    playlist, track, added = playlist[order], track[order], added[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (playlist[1:] != playlist[:-1]) | (track[1:] != track[:-1])
    playlist, track, added = playlist[first], track[first], added[first]
    order = np.lexsort((track, added, playlist))
    playlist, track, added = playlist[order], track[order], added[order]
    position = np.arange(len(playlist)) - np.searchsorted(playlist, playlist) + 1
    return PlaylistTracks(
        playlist=playlist,
        track=track,
        position=position,
        added_ms=added,
        updated_ms=_updated(rng, added, UPDATED_SHARE["playlist_tracks"], spec.end_ms),
    )


@dataclass(frozen=True)
class TrackPools:
    """Tracks by genre, by artist and all of them, each drawable as of a time by popularity."""

    by_genre: Pool
    by_artist: Pool
    everything: Pool

    @classmethod
    def build(cls, tracks: Tracks, origin_ms: int) -> TrackPools:
        created, weight = tracks.created_ms, tracks.popularity
        artists = int(tracks.artist.max()) + 1
        return cls(
            by_genre=Pool.build(tracks.genre, created, weight, len(GENRES), origin_ms),
            by_artist=Pool.build(tracks.artist, created, weight, artists, origin_ms),
            everything=Pool.build(np.zeros(len(created)), created, weight, 1, origin_ms),
        )

    def draw(
        self,
        rng: np.random.Generator,
        genre: np.ndarray,
        artist: np.ndarray,
        from_artist: np.ndarray,
        at_ms: np.ndarray,
    ) -> np.ndarray:
        """A track released by `at_ms`: of `artist` where `from_artist`, else of `genre`;
        falling back to the genre, then to any track, when none exists yet. Each pool is only
        searched for the draws that need it."""
        track, found = self.by_genre.draw(genre, at_ms, rng.random(len(genre)))
        wanted = np.flatnonzero(from_artist)
        by_artist, artist_found = self.by_artist.draw(
            artist[wanted], at_ms[wanted], rng.random(len(wanted))
        )
        track[wanted[artist_found]] = by_artist[artist_found]
        found[wanted[artist_found]] = True
        missing = np.flatnonzero(~found)
        track[missing], _ = self.everything.draw(
            np.zeros(len(missing)), at_ms[missing], rng.random(len(missing))
        )
        return track
