"""Top-k selection over score matrices, in user batches so memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp

# user indices -> (len(users), n_items) scores; higher is better
Scorer = Callable[[np.ndarray], np.ndarray]


def factor_scorer(user_factors: np.ndarray, item_factors: np.ndarray) -> Scorer:
    return lambda users: user_factors[users] @ item_factors.T


def popularity_scorer(item_scores: np.ndarray) -> Scorer:
    return lambda users: np.broadcast_to(item_scores, (len(users), len(item_scores))).copy()


def batches(indices: np.ndarray, n_items: int, cells: int = 8_000_000) -> Iterator[np.ndarray]:
    """Slices of `indices` whose score matrices hold about `cells` floats each."""
    size = max(1, cells // max(n_items, 1))
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def exclude(scores: np.ndarray, excluded: sp.csr_matrix) -> np.ndarray:
    """Set the scores of each row's excluded items (a CSR with one row per score row) to -inf."""
    rows, cols = excluded.nonzero()
    scores[rows, cols] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best item indices and scores, best first; -1 where fewer than k are finite."""
    k_eff = min(k, scores.shape[1])
    if k_eff < scores.shape[1]:
        candidates = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    else:
        candidates = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.argsort(-candidate_scores, axis=1, kind="stable")
    ids = np.take_along_axis(candidates, order, axis=1)
    best = np.take_along_axis(candidate_scores, order, axis=1)
    ids = np.where(np.isfinite(best), ids, -1)
    if k_eff < k:  # fewer items than k: pad
        pad = ((0, 0), (0, k - k_eff))
        ids = np.pad(ids, pad, constant_values=-1)
        best = np.pad(best, pad, constant_values=-np.inf)
    return ids, best


def rank_items(
    scorer: Scorer,
    users: np.ndarray,
    k: int,
    *,
    n_items: int,
    seen: sp.csr_matrix | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of `n_items` items for `users`, leaving out the items each has seen (rows of
    `seen`, indexed by user) and any item where `allowed` is false."""
    ids = np.empty((len(users), k), dtype=np.int64)
    scores = np.empty((len(users), k), dtype=np.float64)
    start = 0
    for batch in batches(users, n_items):
        batch_scores = np.asarray(scorer(batch), dtype=np.float64)
        if allowed is not None:
            batch_scores[:, ~allowed] = -np.inf
        if seen is not None:
            exclude(batch_scores, seen[batch])
        ids[start : start + len(batch)], scores[start : start + len(batch)] = top_k(batch_scores, k)
        start += len(batch)
    return ids, scores
