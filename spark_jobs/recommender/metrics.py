"""Ranking metrics at k, per user, from a hit matrix (pure numpy).

`hits[u, r]` is true when the item at rank r (0-based) of user u's list is relevant (in the
user's test set); `n_relevant[u]` (> 0) is the size of that test set. Binary relevance:
- precision@k = hits / k
- recall@k = hits / |relevant|
- nDCG@k = sum_r hit_r / log2(r + 2), divided by the same sum for min(k, |relevant|) hits
- AP@k = sum_r hit_r * precision@(r + 1), divided by min(k, |relevant|); MAP is its mean
- hit rate@k = 1 if any hit
"""

from __future__ import annotations

import numpy as np


def discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / n_relevant


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    gains = discounts(k)
    dcg = hits[:, :k] @ gains
    ideal = np.cumsum(gains)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    top = hits[:, :k].astype(np.float64)
    precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1)
    return (precision_at_rank * top).sum(axis=1) / np.minimum(n_relevant, k)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].any(axis=1).astype(np.float64)


def catalog_coverage(recommended: np.ndarray, n_catalog: int) -> float:
    """Share of the catalog that appears in at least one list."""
    return len(np.unique(recommended[recommended >= 0])) / n_catalog


def popularity_percentiles(counts: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in (0, 1]: 1 is the most popular, ties share a rank."""
    order = np.argsort(counts, kind="stable")
    ranks = np.empty(len(counts), dtype=np.float64)
    ranks[order] = np.arange(1, len(counts) + 1)
    # ties take the mean rank of their group
    _, group, group_size = np.unique(counts, return_inverse=True, return_counts=True)
    mean_rank = np.bincount(group, weights=ranks) / group_size
    return mean_rank[group] / len(counts)


def mean_popularity_percentile(recommended: np.ndarray, percentiles: np.ndarray) -> float:
    """Popularity bias: the mean popularity percentile of recommended items (0.5 is neutral)."""
    return float(percentiles[recommended[recommended >= 0]].mean())


def ranking_metrics(
    hits: np.ndarray,
    n_relevant: np.ndarray,
    k: int,
    recommended: np.ndarray,
    n_catalog: int,
    percentiles: np.ndarray,
) -> dict[str, float]:
    """Every metric at k, averaged over users (each user counts once)."""
    return {
        f"precision@{k}": float(precision_at_k(hits, k).mean()),
        f"recall@{k}": float(recall_at_k(hits, n_relevant, k).mean()),
        f"ndcg@{k}": float(ndcg_at_k(hits, n_relevant, k).mean()),
        f"map@{k}": float(average_precision_at_k(hits, n_relevant, k).mean()),
        f"hit_rate@{k}": float(hit_rate_at_k(hits, k).mean()),
        f"coverage@{k}": catalog_coverage(recommended[:, :k], n_catalog),
        f"popularity@{k}": mean_popularity_percentile(recommended[:, :k], percentiles),
    }
