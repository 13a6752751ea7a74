"""How people listen: the taste model that turns a catalog into listening sessions. Pure numpy,
vectorised over many sessions at once.

A session is one user listening to several tracks in a row. Its user is drawn by activity among
users who had signed up by then; its genre comes from the user's stable genre taste (sometimes
a random genre: exploring); its tracks come from the user's favourite artists or the genre's
tracks by Zipf popularity, among tracks released by then. Skips are likelier the further a
track is from the user's taste; likes and playlist adds likelier the closer. While the world's
A/B experiment runs, a recommendation session is served by its user's arm, and the arm's
quality sets how long the session runs (demo/world/experiment.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from demo.world.catalog import FAVOURITE_ARTISTS, Catalog, TrackPools
from demo.world.experiment import WorldExperiment
from demo.world.pools import Pool, choose, choose_per_row
from demo.world.vocab import (
    CONTEXT_WEIGHTS,
    DEVICE_WEIGHTS,
    GENRES,
    LIKE,
    PLAY,
    PLAYLIST_ADD,
    PLAYLIST_CONTEXT,
    RADIO_CONTEXT,
    RECOMMENDATION_CONTEXT,
    SKIP,
)

SESSION_MEAN_TRACKS = 7
EXPLORE_SHARE = 0.10  # sessions in a random genre instead of one of the user's
FAVOURITE_ARTIST_SHARE = 0.30  # listens picked from the user's favourite artists
OWN_PLAYLIST_SHARE = 0.40  # playlist sessions on one of the user's own playlists
USUAL_DEVICE_SHARE = 0.85
SKIP_ON_TASTE, SKIP_OFF_TASTE = 0.12, 0.60
LIKE_OFF_TASTE, LIKE_ON_TASTE = 0.01, 0.07
ADD_OFF_TASTE, ADD_ON_TASTE = 0.003, 0.025
COMPLETE_PLAY_SHARE = 0.60  # plays listened to the end; the rest stop after half or more
SKIP_MEDIAN_MS = 8_000
MAX_GAP_MS = 5_000  # silence between two tracks of a session


@dataclass(frozen=True)
class EventBatch:
    """Listening events as columns of catalog indexes and codes."""

    event_type: np.ndarray
    user: np.ndarray
    track: np.ndarray
    ts_ms: np.ndarray
    ms_played: np.ndarray
    context: np.ndarray
    playlist: np.ndarray  # -1 = none
    device: np.ndarray
    arm: np.ndarray  # the experiment arm that served a recommendation session; -1 = none
    session: np.ndarray  # order of generation, for truncating whole sessions first

    def __len__(self) -> int:
        return len(self.ts_ms)

    def take(self, index: np.ndarray | slice) -> EventBatch:
        return EventBatch(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def empty() -> EventBatch:
        return EventBatch(*(np.empty(0, dtype=np.int64) for _ in fields(EventBatch)))

    @staticmethod
    def concat(batches: list[EventBatch]) -> EventBatch:
        return EventBatch(
            *(np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(EventBatch))
        )


class Behaviour:
    """The listening model of one catalog, with its draw pools built once."""

    def __init__(self, catalog: Catalog, experiment: WorldExperiment | None = None) -> None:
        self.catalog = catalog
        self.experiment = experiment
        if experiment is not None:
            self.user_arm = experiment.arm_of_users(catalog.users.ids)
        users, playlists = catalog.users, catalog.playlists
        origin = catalog.spec.launch_ms
        self.tracks = TrackPools.build(catalog.tracks, origin)
        self.users = Pool.build(
            np.zeros(len(users.ids)), users.created_ms, users.activity, 1, origin
        )
        public = np.flatnonzero(playlists.is_public)
        self.public_playlist_index = public
        self.public_playlists = Pool.build(
            playlists.genre[public],
            playlists.created_ms[public],
            np.ones(len(public)),
            len(GENRES),
            origin,
        )
        self.own_playlists = Pool.build(
            playlists.owner,
            playlists.created_ms,
            np.ones(len(playlists.ids)),
            len(users.ids),
            origin,
        )
        self.top_taste = users.taste.max(axis=1)
        self.cumulative_taste = np.cumsum(users.taste, axis=1)

    def sessions(self, rng: np.random.Generator, start_ms: np.ndarray, until_ms: int) -> EventBatch:
        """The events of sessions starting at `start_ms`, up to (excluding) `until_ms`: when
        they arrive, later listening is not known yet."""
        count = len(start_ms)
        user, _ = self.users.draw(np.zeros(count), start_ms, rng.random(count))
        genre = self._session_genre(rng, user)
        context, playlist, genre = self._session_context(rng, user, genre, start_ms)
        usual = rng.random(count) < USUAL_DEVICE_SHARE
        device = np.where(
            usual, self.catalog.users.device[user], choose(rng, DEVICE_WEIGHTS, count)
        )

        arm = self._arm(user, context, start_ms)
        mean_tracks = SESSION_MEAN_TRACKS * (
            self.experiment.session_length_factor(arm) if self.experiment else 1.0
        )
        length = rng.geometric(1 / mean_tracks, count)
        session = np.repeat(np.arange(count), length)
        event_type, track, ts_ms, ms_played, affinity = self._listens(
            rng, session, user[session], genre[session], start_ms[session]
        )
        keep = ts_ms < until_ms
        session = session[keep]
        listens = EventBatch(
            event_type=event_type[keep],
            user=user[session],
            track=track[keep],
            ts_ms=ts_ms[keep],
            ms_played=ms_played[keep],
            context=context[session],
            playlist=playlist[session],
            device=device[session],
            arm=arm[session],
            session=session,
        )
        return self._with_reactions(rng, listens, affinity[keep], until_ms)

    def _arm(self, user: np.ndarray, context: np.ndarray, start_ms: np.ndarray) -> np.ndarray:
        """The arm serving each session: the user's, for recommendation sessions started while
        the experiment runs; else -1."""
        experiment = self.experiment
        if experiment is None:
            return np.full(len(user), -1)
        running = (start_ms >= experiment.start_ms) & (start_ms < experiment.end_ms)
        served = running & (context == RECOMMENDATION_CONTEXT)
        return np.where(served, self.user_arm[user], -1)

    def _session_genre(self, rng: np.random.Generator, user: np.ndarray) -> np.ndarray:
        count = len(user)
        favourite = choose_per_row(rng, self.cumulative_taste[user])
        exploring = rng.random(count) < EXPLORE_SHARE
        return np.where(exploring, rng.integers(0, len(GENRES), count), favourite)

    def _session_context(
        self, rng: np.random.Generator, user: np.ndarray, genre: np.ndarray, start_ms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Context and playlist of each session; a playlist session plays the playlist's genre.
        Without a playlist to play, the user turns on the radio."""
        count = len(user)
        context = choose(rng, CONTEXT_WEIGHTS, count)
        own, own_found = self.own_playlists.draw(user, start_ms, rng.random(count))
        public, public_found = self.public_playlists.draw(genre, start_ms, rng.random(count))
        public = self.public_playlist_index[public]
        use_own = own_found & (rng.random(count) < OWN_PLAYLIST_SHARE)
        playlist = np.where(use_own, own, np.where(public_found, public, -1))
        on_playlist = (context == PLAYLIST_CONTEXT) & (playlist >= 0)
        context = np.where((context == PLAYLIST_CONTEXT) & ~on_playlist, RADIO_CONTEXT, context)
        genre = np.where(on_playlist, self.catalog.playlists.genre[np.maximum(playlist, 0)], genre)
        return context, np.where(on_playlist, playlist, -1), genre

    def _listens(
        self,
        rng: np.random.Generator,
        session: np.ndarray,
        user: np.ndarray,
        genre: np.ndarray,
        start_ms: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Plays and skips of each session's tracks, one after another from the session's start:
        (event type, track, ts, ms played, affinity)."""
        count = len(session)
        tracks, users = self.catalog.tracks, self.catalog.users
        favourites = users.favourite_artists[user]
        favourite = favourites[np.arange(count), rng.integers(0, FAVOURITE_ARTISTS, count)]
        from_favourite = rng.random(count) < FAVOURITE_ARTIST_SHARE
        track = self.tracks.draw(rng, genre, favourite, from_favourite, start_ms)

        affinity = self.affinity(user, track)
        skip = rng.random(count) < SKIP_ON_TASTE + (SKIP_OFF_TASTE - SKIP_ON_TASTE) * (1 - affinity)
        duration = tracks.duration_ms[track]
        skipped_at = np.clip(rng.lognormal(np.log(SKIP_MEDIAN_MS), 0.6, count), 500, 30_000)
        complete = rng.random(count) < COMPLETE_PLAY_SHARE
        played_to = np.where(complete, 1.0, rng.uniform(0.5, 1.0, count)) * duration
        ms_played = np.minimum(np.where(skip, skipped_at, played_to), duration).astype(np.int64)

        # Each track starts when the previous one of its session stopped, plus a short gap.
        step = ms_played + rng.integers(0, MAX_GAP_MS, count)
        ends = np.cumsum(step)
        first = np.searchsorted(session, session)
        offset = ends - step - (ends[first] - step[first])
        return np.where(skip, SKIP, PLAY), track, start_ms + offset, ms_played, affinity

    def affinity(self, user: np.ndarray, track: np.ndarray) -> np.ndarray:
        """How well a track fits a user's taste, in [0, 1]: the user's taste for its genre
        relative to their favourite genre, or 1 for a favourite artist's track."""
        tracks, users = self.catalog.tracks, self.catalog.users
        genre_fit = users.taste[user, tracks.genre[track]] / self.top_taste[user]
        favourite = (users.favourite_artists[user] == tracks.artist[track][:, None]).any(axis=1)
        return np.where(favourite, 1.0, genre_fit)

    def _with_reactions(
        self, rng: np.random.Generator, listens: EventBatch, affinity: np.ndarray, until_ms: int
    ) -> EventBatch:
        """Add likes and playlist adds during plays (never skips): likelier on taste. A user
        adds to one of their own playlists; without one, there is no add."""
        count = len(listens)
        played = listens.event_type == PLAY
        like = played & (
            rng.random(count) < LIKE_OFF_TASTE + (LIKE_ON_TASTE - LIKE_OFF_TASTE) * affinity
        )
        add = played & (
            rng.random(count) < ADD_OFF_TASTE + (ADD_ON_TASTE - ADD_OFF_TASTE) * affinity
        )
        # Reactions happen while the track plays, before the batch's horizon.
        room = np.maximum(np.minimum(listens.ms_played, until_ms - 1 - listens.ts_ms), 0)
        reaction_ts = listens.ts_ms + (rng.random(count) * room).astype(np.int64)
        target, target_found = self.own_playlists.draw(listens.user, reaction_ts, rng.random(count))
        add &= target_found

        likes = listens.take(like)
        likes = _as_reaction(likes, LIKE, reaction_ts[like], likes.playlist)
        adds = listens.take(add)
        adds = _as_reaction(adds, PLAYLIST_ADD, reaction_ts[add], target[add])
        merged = EventBatch.concat([listens, likes, adds])
        return merged.take(np.lexsort((merged.ts_ms, merged.session)))


def _as_reaction(
    batch: EventBatch, event_type: int, ts_ms: np.ndarray, playlist: np.ndarray
) -> EventBatch:
    return EventBatch(
        event_type=np.full(len(batch), event_type),
        user=batch.user,
        track=batch.track,
        ts_ms=ts_ms,
        ms_played=np.zeros(len(batch), dtype=np.int64),
        context=batch.context,
        playlist=playlist,
        device=batch.device,
        arm=batch.arm,
        session=batch.session,
    )
