"""Batch recommendations as pure functions of factors, histories and the catalog.

- `top_n`: the best N items per user by factor score, without the items a user has seen
  (optional) and with at most M items per artist.
- `slot_new_tracks`: tracks nobody has played yet have no factors; each list gives a few
  evenly spread ranks to the new tracks closest (cosine, standardized audio features) to the
  user's listening profile, so the catalog's newest tracks are heard at all.
- `fallback_lists`: users without history get the tracks most popular in their country, with
  their taste's genres (from their own playlists, if any) boosted, same artist cap.
- `similar_items`: per item, the N nearest items by cosine of item factors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import scipy.sparse as sp

from spark_jobs.recommender.ranking import Scorer, batches, factor_scorer, rank_items, top_k

TASTE_BOOST = 2.0  # a taste-genre track counts as twice as popular in the fallback
COUNTRY_PRIOR_USERS = 10.0  # country popularity is shrunk toward global as if by 10 users


def artist_cap(ranked: np.ndarray, artists: np.ndarray, max_per_artist: int) -> np.ndarray:
    """keep[u, r]: whether ranked[u, r] is among the first `max_per_artist` of its artist in
    row u (vectorised: number each (row, artist) group's occurrences in rank order)."""
    valid = ranked >= 0
    artist = np.where(valid, artists[np.maximum(ranked, 0)], -1)
    rows = np.repeat(np.arange(ranked.shape[0]), ranked.shape[1])
    keys = rows * (artists.max() + 2) + artist.ravel() + 1
    order = np.argsort(keys, kind="stable")  # stable: rank order inside each group
    sorted_keys = keys[order]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_keys)) + 1]
    group_sizes = np.diff(np.r_[group_start, len(keys)])
    occurrence = np.empty(len(keys), dtype=np.int64)
    occurrence[order] = np.arange(len(keys)) - np.repeat(group_start, group_sizes)
    return valid & ((occurrence.reshape(ranked.shape) < max_per_artist) | (artist < 0))


def top_n(
    scorer: Scorer,
    users: np.ndarray,
    n: int,
    *,
    n_items: int,
    seen: sp.csr_matrix | None = None,
    allowed: np.ndarray | None = None,
    artists: np.ndarray | None = None,
    max_per_artist: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores) of shape (len(users), n), best first; -1 / -inf pad short lists.
    `artists[i]` is item i's artist code (-1: unknown, never capped)."""
    rank = partial(rank_items, scorer, n_items=n_items, seen=seen, allowed=allowed)
    if artists is None or max_per_artist <= 0:
        return rank(users, n)
    # Rank a few times N and cap; rows still short of N are ranked 4x deeper, up to the whole
    # catalog, in blocks of rows x depth cells: memory stays bounded by the block, whatever the
    # users and catalog (a cap leaves the first N the same at any depth that holds them).
    depth = min(n_items, 4 * n)
    ids, scores = _capped(rank, users, n, depth, artists, max_per_artist)
    while depth < n_items and (short := np.flatnonzero((ids < 0).any(axis=1))).size:
        depth = min(n_items, 4 * depth)
        for rows in batches(short, depth):
            ids[rows], scores[rows] = _capped(rank, users[rows], n, depth, artists, max_per_artist)
    return ids, scores


def _capped(
    rank: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    users: np.ndarray,
    n: int,
    depth: int,
    artists: np.ndarray,
    max_per_artist: int,
) -> tuple[np.ndarray, np.ndarray]:
    ranked, ranked_scores = rank(users, depth)
    keep = artist_cap(ranked, artists, max_per_artist)
    # keep order: stable sort moves kept positions to the front
    order = np.argsort(~keep, axis=1, kind="stable")[:, :n]
    ids = np.take_along_axis(ranked, order, axis=1)
    scores = np.take_along_axis(ranked_scores, order, axis=1)
    dropped = ~np.take_along_axis(keep, order, axis=1)
    return _pad(np.where(dropped, -1, ids), np.where(dropped, -np.inf, scores), n)


def _pad(ids: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    missing = n - ids.shape[1]
    if missing <= 0:
        return ids, scores
    return (
        np.pad(ids, ((0, 0), (0, missing)), constant_values=-1),
        np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf),
    )


# --- new tracks: audio similarity -------------------------------------------------------------


def standardize(features: np.ndarray) -> np.ndarray:
    """Columns to mean 0, standard deviation 1 (constant columns to 0); NaN counts as mean."""
    mean = np.nanmean(features, axis=0)
    std = np.nanstd(features, axis=0)
    scaled = (features - mean) / np.where(std > 0, std, 1.0)
    return np.nan_to_num(scaled, nan=0.0)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def new_track_picks(
    history: sp.csr_matrix, known_audio: np.ndarray, new_audio: np.ndarray, slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per user (row of `history` over known items), the `slots` new tracks whose standardized
    audio features are closest (cosine) to the user's weighted mean profile."""
    profiles = unit_rows(np.asarray(history @ known_audio))
    scorer = factor_scorer(profiles, unit_rows(new_audio))
    return rank_items(scorer, np.arange(history.shape[0]), slots, n_items=len(new_audio))


def slot_ranks(n: int, slots: int) -> np.ndarray:
    """0-based ranks given to new tracks: evenly spread, the first after n / (slots + 1)."""
    return (np.arange(1, slots + 1) * n) // (slots + 1)


def slot_new_tracks(
    ids: np.ndarray, scores: np.ndarray, new_ids: np.ndarray, new_scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Put each row's new tracks at `slot_ranks`, shifting the model's items down (the last
    ones drop off); a row with fewer new tracks keeps -1 gaps there."""
    n, slots = ids.shape[1], new_ids.shape[1]
    ranks = slot_ranks(n, slots)
    model_ranks = np.setdiff1d(np.arange(n), ranks)
    merged_ids, merged_scores = np.empty_like(ids), np.empty_like(scores)
    merged_ids[:, ranks], merged_scores[:, ranks] = new_ids, new_scores
    merged_ids[:, model_ranks] = ids[:, : n - slots]
    merged_scores[:, model_ranks] = scores[:, : n - slots]
    return merged_ids, merged_scores


# --- users without history --------------------------------------------------------------------


def fallback_scores(
    plays_by_country: np.ndarray, users_by_country: np.ndarray, country: int
) -> np.ndarray:
    """Share of a country's users who played each item, shrunk toward the global share."""
    global_share = plays_by_country.sum(axis=0) / max(users_by_country.sum(), 1)
    local = plays_by_country[country] if country >= 0 else np.zeros_like(global_share)
    users = users_by_country[country] if country >= 0 else 0
    return (local + COUNTRY_PRIOR_USERS * global_share) / (users + COUNTRY_PRIOR_USERS)


def fallback_list(
    plays_by_country: np.ndarray,
    users_by_country: np.ndarray,
    country: int,
    taste_genre: int,
    genres: np.ndarray,
    artists: np.ndarray,
    n: int,
    max_per_artist: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The list of users of one country (-1: unknown) and taste genre (-1: none): country
    popularity, taste genre boosted, artist cap."""
    scores = fallback_scores(plays_by_country, users_by_country, country)
    if taste_genre >= 0:
        scores = np.where(genres == taste_genre, scores * TASTE_BOOST, scores)
    scores = np.where(scores > 0, scores, -np.inf)  # only tracks someone has played
    ids, best = top_n(
        lambda users: scores[None, :],
        np.zeros(1, dtype=np.int64),
        n,
        n_items=len(scores),
        artists=artists,
        max_per_artist=max_per_artist,
    )
    return ids[0], best[0]


# --- similar tracks ---------------------------------------------------------------------------


def similar_items(
    item_factors: np.ndarray, n: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every allowed item: its n most similar allowed items by factor cosine, itself
    excluded. Returns (items, similar ids (len, n), cosines)."""
    items = np.flatnonzero(allowed)
    unit = unit_rows(item_factors.astype(np.float64))
    similar = np.empty((len(items), n), dtype=np.int64)
    cosines = np.empty((len(items), n), dtype=np.float64)
    start = 0
    for batch in batches(items, len(unit)):
        scores = unit[batch] @ unit.T
        scores[:, ~allowed] = -np.inf
        scores[np.arange(len(batch)), batch] = -np.inf
        similar[start : start + len(batch)], cosines[start : start + len(batch)] = top_k(scores, n)
        start += len(batch)
    return items, similar, cosines
