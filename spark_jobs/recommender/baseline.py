"""The popularity baseline: every user gets the items most users interacted with in training.

Any model worth publishing has to beat it on the same split (see gate.py)."""

from __future__ import annotations

import numpy as np

from spark_jobs.recommender.data import Interactions
from spark_jobs.recommender.ranking import Scorer, popularity_scorer


def item_popularity(train: Interactions) -> np.ndarray:
    """Distinct training users per item (pairs are unique, so a count of pairs)."""
    return np.bincount(train.items, minlength=train.n_items).astype(np.float64)


def popularity_baseline(train: Interactions) -> Scorer:
    return popularity_scorer(item_popularity(train))
