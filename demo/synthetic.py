"""Generated implicit feedback with structure ALS can find: users belong to taste clusters and
mostly play their cluster's items, the rest by global popularity (both skewed to a head).
Used by the tests and by bench/bench_training.py; nothing here is tuned to any data set."""

from __future__ import annotations

import numpy as np


def clustered_interactions(
    n_users: int,
    n_items: int,
    n_interactions: int,
    *,
    clusters: int = 20,
    in_cluster: float = 0.8,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, plays) of `n_interactions` events; repeated pairs are left to the caller
    (they add up in a CSR matrix). Item i belongs to cluster i % clusters."""
    rng = np.random.default_rng(seed)
    # heavy-tailed user activity: a few users play a lot
    users = np.minimum((n_users * rng.random(n_interactions) ** 2).astype(np.int64), n_users - 1)
    cluster_size = max(n_items // clusters, 1)
    rank_in_cluster = (cluster_size * rng.random(n_interactions) ** 2).astype(np.int64)
    local = rank_in_cluster * clusters + users % clusters
    global_pick = (n_items * rng.random(n_interactions) ** 3).astype(np.int64)
    items = np.where(rng.random(n_interactions) < in_cluster, local, global_pick)
    items = np.minimum(items, n_items - 1)
    plays = rng.integers(1, 5, n_interactions).astype(np.float32)
    return users.astype(np.int32), items.astype(np.int32), plays
