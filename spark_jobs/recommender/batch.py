"""The gold tables of one model, assembled from its factors, the training history and the
current catalog (pure: arrays in, Arrow out; the lake IO is in train.py).

Item space: the model's items first (indices of the training data), then the catalog's new
tracks (no interactions, no factors), so one artist code per entry lets the artist cap see both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from spark_jobs.recommender.data import Interactions
from spark_jobs.recommender.inputs import Tracks, Users
from spark_jobs.recommender.ranking import factor_scorer
from spark_jobs.recommender.recommend import (
    artist_cap,
    fallback_list,
    new_track_picks,
    similar_items,
    slot_new_tracks,
    standardize,
    top_n,
)


@dataclass(frozen=True)
class ListOptions:
    n: int = 50
    exclude_seen: bool = True
    max_per_artist: int = 3
    new_track_slots: int = 5


@dataclass(frozen=True)
class ItemSpace:
    """Model items then new tracks, with what the catalog says about each."""

    track_ids: np.ndarray
    n_model_items: int
    in_catalog: np.ndarray  # bool: current in silver/tracks (only those are recommended)
    artists: np.ndarray  # int artist code, -1 if unknown
    genres: np.ndarray  # int genre code (position in genre_names), -1 if unknown
    genre_names: pd.Index
    audio: np.ndarray  # standardized audio features, 0 if unknown

    @classmethod
    def build(cls, item_ids: np.ndarray, tracks: Tracks) -> ItemSpace:
        new = ~pd.Index(tracks.track_ids).isin(item_ids)
        track_ids = np.concatenate([item_ids, tracks.track_ids[new]])
        position = pd.Index(tracks.track_ids).get_indexer(track_ids)
        known = position >= 0
        artist_codes = pd.factorize(tracks.artist_ids)[0]
        genre_codes, genre_names = pd.factorize(tracks.genres)
        audio = np.zeros((len(track_ids), tracks.audio.shape[1]))
        audio[known] = standardize(tracks.audio)[position[known]]
        return cls(
            track_ids=track_ids,
            n_model_items=len(item_ids),
            in_catalog=known,
            artists=np.where(known, artist_codes[position], -1),
            genres=np.where(known, genre_codes[position], -1),
            genre_names=pd.Index(genre_names),
            audio=audio,
        )


def model_lists(
    data: Interactions,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    space: ItemSpace,
    options: ListOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Lists of every user with history: (ids in the item space, scores), n wide, -1 padded.

    With new-track slots the model ranks n + slots items: a new track can push at most one
    item past its artist's cap, so n remain after the cap over the merged list."""
    model = slice(0, space.n_model_items)
    history = data.matrix()
    n_new = len(space.track_ids) - space.n_model_items
    slots = min(options.new_track_slots, n_new, options.n // 2)
    ids, scores = top_n(
        factor_scorer(user_factors, item_factors),
        np.arange(data.n_users),
        options.n + slots,
        n_items=space.n_model_items,
        seen=history if options.exclude_seen else None,
        allowed=space.in_catalog[model],
        artists=space.artists[model],
        max_per_artist=options.max_per_artist,
    )
    if slots == 0:
        return ids, scores
    new_ids, new_scores = new_track_picks(
        history, space.audio[model], space.audio[space.n_model_items :], slots
    )
    new_ids = np.where(new_ids >= 0, new_ids + space.n_model_items, -1)
    merged_ids, merged_scores = slot_new_tracks(ids, scores, new_ids, new_scores)
    keep = artist_cap(merged_ids, space.artists, options.max_per_artist or options.n)
    order = np.argsort(~keep, axis=1, kind="stable")[:, : options.n]  # compact, keep order
    kept = np.take_along_axis(keep, order, axis=1)
    return (
        np.where(kept, np.take_along_axis(merged_ids, order, axis=1), -1),
        np.where(kept, np.take_along_axis(merged_scores, order, axis=1), -np.inf),
    )


def fallback_lists(
    data: Interactions,
    users: Users,
    space: ItemSpace,
    options: ListOptions,
    *,
    everyone: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Popularity lists (by country and taste) of the catalog users without history, or of
    every catalog user with `everyone` (the baseline): (user ids, ids in the item space,
    scores)."""
    cold = np.ones(len(users.user_ids), bool)
    if not everyone:
        cold = ~pd.Index(users.user_ids).isin(data.user_ids)
    countries, country_codes = pd.factorize(users.countries)
    user_country = pd.Index(users.user_ids).get_indexer(data.user_ids)
    data_country = np.where(user_country >= 0, countries[np.maximum(user_country, 0)], -1)
    # per country: users who played each model item (-1: country unknown, global only)
    n_countries = len(country_codes)
    pair_country = data_country[data.users]
    local = pair_country >= 0
    plays = np.zeros((n_countries + 1, space.n_model_items))
    np.add.at(plays, (np.where(local, pair_country, n_countries), data.items), 1.0)
    plays[:, ~space.in_catalog[: space.n_model_items]] = 0.0
    users_by_country = np.bincount(
        np.where(data_country >= 0, data_country, n_countries), minlength=n_countries + 1
    )
    taste_codes = space.genre_names.get_indexer(users.tastes)  # -1: no taste known
    cold_users = np.flatnonzero(cold)
    ids = np.full((len(cold_users), options.n), -1)
    scores = np.full((len(cold_users), options.n), -np.inf)
    groups = pd.DataFrame({"country": countries[cold_users], "taste": taste_codes[cold_users]})
    for (country, taste), rows in groups.groupby(["country", "taste"]).indices.items():
        ids[rows], scores[rows] = fallback_list(
            plays,
            users_by_country,
            int(country),
            int(taste),
            space.genres[: space.n_model_items],
            space.artists[: space.n_model_items],
            options.n,
            options.max_per_artist,
        )
    return users.user_ids[cold_users], ids, scores


def list_rows(
    user_ids: np.ndarray, ids: np.ndarray, scores: np.ndarray, space: ItemSpace, source: str
) -> pa.Table:
    """Long format: one row per (user, rank) with a track; ranks are 1-based and dense."""
    valid = ids >= 0
    ranks = np.cumsum(valid, axis=1)
    rows, _ = np.nonzero(valid)
    return pa.table(
        {
            "user_id": pa.array(user_ids[rows].astype(str)),
            "rank": pa.array(ranks[valid], pa.int32()),
            "track_id": pa.array(space.track_ids[ids[valid]].astype(str)),
            "score": pa.array(scores[valid], pa.float64()),
            "source": pa.array([source] * int(valid.sum()), pa.string()),
        }
    )


def similar_tracks_rows(item_factors: np.ndarray, space: ItemSpace, n: int) -> pa.Table:
    allowed = space.in_catalog[: space.n_model_items]
    items, similar, cosines = similar_items(item_factors, n, allowed)
    return _similar_rows(items, similar, cosines, space)


def popular_in_genre_rows(data: Interactions, space: ItemSpace, n: int) -> pa.Table:
    """The baseline's similar tracks: for each played catalog track, the `n` tracks of its
    genre most users played (itself left out), scored by their share of those users."""
    allowed = space.in_catalog[: space.n_model_items]
    listeners = np.bincount(data.items, minlength=space.n_model_items).astype(np.float64)
    genres = space.genres[: space.n_model_items]
    items = np.flatnonzero(allowed & (listeners > 0))
    similar = np.full((len(items), n), -1)
    scores = np.full((len(items), n), -np.inf)
    for genre in np.unique(genres[items]):
        members = items[genres[items] == genre]
        ranked = members[np.argsort(-listeners[members], kind="stable")][: n + 1]
        for row in np.flatnonzero(np.isin(items, members)):
            others = ranked[ranked != items[row]][:n]
            similar[row, : len(others)] = others
            scores[row, : len(others)] = listeners[others] / len(data.user_ids)
    return _similar_rows(items, similar, scores, space)


def _similar_rows(
    items: np.ndarray, similar: np.ndarray, scores: np.ndarray, space: ItemSpace
) -> pa.Table:
    """Long format: one row per (track, rank) with a similar track; ranks 1-based, dense."""
    valid = similar >= 0
    rows, _ = np.nonzero(valid)
    return pa.table(
        {
            "track_id": pa.array(space.track_ids[items[rows]].astype(str)),
            "rank": pa.array(np.cumsum(valid, axis=1)[valid], pa.int32()),
            "similar_track_id": pa.array(space.track_ids[similar[valid]].astype(str)),
            "score": pa.array(scores[valid], pa.float64()),
        }
    )
