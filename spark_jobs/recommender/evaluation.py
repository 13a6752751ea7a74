"""Score a model and the popularity baseline on the same split, with the same protocol.

Users evaluated: those with at least one training and one test pair. Candidate items: those
with at least one training pair (nothing can be learnt about the others); each user's training
items are filtered from the ranking. Test items outside the candidates still count as relevant.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from spark_jobs.recommender.baseline import item_popularity, popularity_baseline
from spark_jobs.recommender.data import InteractionsError
from spark_jobs.recommender.metrics import popularity_percentiles, ranking_metrics
from spark_jobs.recommender.ranking import Scorer, rank_items
from spark_jobs.recommender.splits import Split


def evaluate(scorer: Scorer, split: Split, k: int) -> dict[str, float]:
    """Metrics at k of `scorer` on `split` (see metrics.py for their definitions)."""
    train, test = split.train.matrix(), split.test.matrix()
    relevant_per_user = np.diff(test.indptr)
    users = np.flatnonzero((relevant_per_user > 0) & (np.diff(train.indptr) > 0))
    if len(users) == 0:
        raise InteractionsError(
            "no user has both training and test interactions: nothing to evaluate"
        )
    popularity = item_popularity(split.train)
    candidates = popularity > 0
    recommended, _ = rank_items(
        scorer, users, k, n_items=train.shape[1], seen=train, allowed=candidates
    )
    hits = _hits(recommended, test[users])
    # percentiles among candidate items only, so unreachable items do not shift them
    percentiles = np.zeros(len(popularity))
    percentiles[candidates] = popularity_percentiles(popularity[candidates])
    metrics = ranking_metrics(
        hits, relevant_per_user[users], k, recommended, int(candidates.sum()), percentiles
    )
    return {**metrics, "users": float(len(users))}


def evaluate_with_baseline(scorer: Scorer, split: Split, k: int) -> dict[str, dict[str, float]]:
    return {
        "model": evaluate(scorer, split, k),
        "baseline": evaluate(popularity_baseline(split.train), split, k),
    }


def _hits(recommended: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """hits[u, r]: is item recommended[u, r] in row u of `relevant` (-1 marks no item)."""
    rows = np.repeat(np.arange(recommended.shape[0]), recommended.shape[1])
    items = recommended.ravel()
    found = items >= 0
    hits = np.zeros(items.shape, dtype=bool)
    hits[found] = np.asarray(relevant[rows[found], items[found]]).ravel() > 0
    return hits.reshape(recommended.shape)
