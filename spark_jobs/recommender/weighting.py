"""Confidence of an interaction, from its value r (plays, a rating, a feature-job confidence).

ALS for implicit feedback (Hu, Koren, Volinsky 2008) fits preference p = 1 for every observed
pair with confidence c = 1 + alpha * w(r), and p = 0 with confidence 1 elsewhere. w is:
- none: w = r
- log:  w = log(1 + r / epsilon), which tames heavy users and repeat plays
- bm25: w = BM25(r), which down-weights users with many items (idf) and long-tail-normalises
  items by their total (as `implicit.nearest_neighbours.bm25_weight` on the item x user matrix)
Both engines receive c in the same form (see engines/), so these options mean the same there.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

WEIGHTINGS = ("none", "log", "bm25")
LOG_EPSILON = 1.0
BM25_K1 = 100.0  # saturation of repeated interactions
BM25_B = 0.8  # how much an item's total is normalised by the average item's


def weighted(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """w(r) for every stored value of a users x items matrix."""
    result = matrix.astype(np.float32, copy=True)
    if weighting == "none":
        return result
    if weighting == "log":
        result.data = np.log1p(result.data / LOG_EPSILON)
        return result
    if weighting == "bm25":
        return bm25(result)
    raise ValueError(f"weighting {weighting!r} is not one of {WEIGHTINGS}")


def bm25(matrix: sp.csr_matrix, k1: float = BM25_K1, b: float = BM25_B) -> sp.csr_matrix:
    pairs = matrix.tocoo()
    users, items, values = pairs.row, pairs.col, pairs.data
    n_users, n_items = matrix.shape
    # idf >= 0 keeps every confidence >= 1, even for a user who has every item
    idf = np.maximum(np.log(n_items) - np.log1p(np.bincount(users, minlength=n_users)), 0.0)
    item_totals = np.bincount(items, weights=values, minlength=n_items)
    length_norm = (1.0 - b) + b * item_totals / item_totals[item_totals > 0].mean()
    data = values * (k1 + 1.0) / (k1 * length_norm[items] + values) * idf[users]
    return sp.csr_matrix((data.astype(np.float32), (users, items)), shape=matrix.shape)


def confidence(matrix: sp.csr_matrix, weighting: str, alpha: float) -> sp.csr_matrix:
    """c = 1 + alpha * w(r) on the stored pairs (unobserved pairs keep confidence 1)."""
    result = weighted(matrix, weighting)
    result.data = 1.0 + alpha * result.data
    return result
