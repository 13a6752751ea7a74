"""Train/test splits of interactions. Both sides keep the full id vocabulary.

- `stratified_split`: per user, a random share goes to train and the rest to test; every user
  keeps at least one training pair (the protocol of published results, e.g. MovieLens 75/25).
- `temporal_split`: train on pairs before T, test on pairs in [T, T + horizon): what the nightly
  run does, since the future is what a model has to predict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spark_jobs.recommender.data import Interactions, InteractionsError

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Split:
    train: Interactions
    test: Interactions


Splitter = Callable[[Interactions], Split]


def stratified_split(data: Interactions, train_share: float = 0.75, seed: int = 42) -> Split:
    """Per user, round((1 - train_share) * n) random pairs to test, keeping >= 1 in train."""
    if not 0.0 < train_share < 1.0:
        raise InteractionsError(f"stratified split: train share {train_share} is not in (0, 1)")
    rng = np.random.default_rng(seed)
    # Shuffle within each user: sort by (user, random key), then number the pairs per user.
    order = np.lexsort((rng.random(len(data)), data.users))
    per_user = np.bincount(data.users, minlength=data.n_users)
    starts = np.concatenate(([0], np.cumsum(per_user)[:-1]))
    position = np.empty(len(data), dtype=np.int64)
    position[order] = np.arange(len(data)) - starts[data.users[order]]
    n_test = np.minimum(np.rint((1.0 - train_share) * per_user), per_user - 1)
    is_test = position < n_test[data.users]
    return Split(data.subset(~is_test), data.subset(is_test))


def temporal_split(data: Interactions, cutoff: int, horizon_seconds: int | None = None) -> Split:
    """Train on pairs with timestamp < cutoff, test on cutoff <= timestamp < cutoff + horizon."""
    if data.timestamps is None:
        raise InteractionsError("temporal split: the interactions have no timestamps")
    before = data.timestamps < cutoff
    after = ~before
    if horizon_seconds is not None:
        after &= data.timestamps < cutoff + horizon_seconds
    if not before.any() or not after.any():
        raise InteractionsError(
            f"temporal split at {cutoff}: {before.sum()} pairs before and {after.sum()} in the "
            "test window; both sides need some"
        )
    return Split(data.subset(before), data.subset(after))


def last_days_split(data: Interactions, days: float) -> Split:
    """Temporal split whose test window is the last `days` days of the data."""
    if data.timestamps is None:
        raise InteractionsError("temporal split: the interactions have no timestamps")
    end = int(data.timestamps.max()) + 1
    return temporal_split(data, end - int(days * DAY_SECONDS))


def split_kind(spec: str) -> tuple[str, float]:
    """`stratified:0.75` (train share per user) or `temporal:7` (test on the last 7 days), as
    (kind, number); both engines' splitters read their specs with it."""
    kind, _, value = spec.partition(":")
    try:
        number = float(value)
    except ValueError:
        number = None
    if (kind == "stratified" and number is not None) or (
        kind == "temporal" and number is not None and number > 0
    ):
        return kind, number
    raise InteractionsError(
        f"split {spec!r}: expected stratified:<train share> (e.g. stratified:0.75) or "
        "temporal:<test days> (e.g. temporal:7)"
    )


def parse_split(spec: str, seed: int) -> Splitter:
    kind, number = split_kind(spec)
    if kind == "stratified":
        return lambda data: stratified_split(data, number, seed)
    return lambda data: last_days_split(data, number)
