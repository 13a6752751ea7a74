"""Weighted draws among the items of a group (a genre's tracks, an artist's tracks, a user's
playlists) that already exist at a given time, vectorised over many draws at once.

Items are sorted by (group, created time) and keyed `group << 43 | time offset`, so one
`searchsorted` finds, for every draw at once, how many of its group's items exist yet; a second
one on the cumulative weights picks the item."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TIME_BITS = 43  # 2**43 ms is ~278 years of time offsets


@dataclass(frozen=True)
class Pool:
    origin_ms: int
    keys: np.ndarray  # sorted int64 keys of the items
    items: np.ndarray  # item index at each sorted position
    cumulative: np.ndarray  # float64 cumulative weight, len(items) + 1, starting at 0
    group_start: np.ndarray  # sorted position of each group's first item, len(groups) + 1

    @classmethod
    def build(
        cls,
        groups: np.ndarray,
        created_ms: np.ndarray,
        weights: np.ndarray,
        group_count: int,
        origin_ms: int,
    ) -> Pool:
        """`origin_ms` must not be after any `created_ms` (nor any time drawn at)."""
        offsets = np.asarray(created_ms, dtype=np.int64) - origin_ms
        if offsets.size and offsets.min() < 0:
            raise ValueError("an item was created before the pool's origin")
        keys = (np.asarray(groups, dtype=np.int64) << _TIME_BITS) | offsets
        order = np.argsort(keys, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=float)[order])])
        group_start = np.searchsorted(keys[order], np.arange(group_count + 1) << _TIME_BITS)
        return cls(origin_ms, keys[order], order, cumulative, group_start)

    def draw(
        self, groups: np.ndarray, at_ms: np.ndarray, uniform: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One item per draw: of group `groups[i]`, created at or before `at_ms[i]`, chosen by
        weight with `uniform[i]` in [0, 1). Returns (items, found); where nothing exists yet,
        found is False and the item is meaningless."""
        groups = np.asarray(groups, dtype=np.int64)
        if len(self.items) == 0:
            return np.zeros(len(groups), dtype=np.int64), np.zeros(len(groups), dtype=bool)
        offsets = np.maximum(np.asarray(at_ms, dtype=np.int64) - self.origin_ms, 0)
        low = self.group_start[groups]
        high = np.searchsorted(self.keys, (groups << _TIME_BITS) | offsets, side="right")
        found = high > low
        base = self.cumulative[low]
        target = base + uniform * (self.cumulative[high] - base)
        position = np.searchsorted(self.cumulative, target, side="right") - 1
        position = np.clip(position, low, np.maximum(high - 1, low))
        return self.items[np.minimum(position, len(self.items) - 1)], found


def choose(rng: np.random.Generator, weights: np.ndarray, count: int) -> np.ndarray:
    """`count` category indexes drawn by `weights`."""
    return rng.choice(len(weights), size=count, p=weights / weights.sum())


def choose_per_row(rng: np.random.Generator, cumulative: np.ndarray) -> np.ndarray:
    """One category index per row of `cumulative` (each row: cumulative category weights)."""
    target = rng.random(len(cumulative))[:, None] * cumulative[:, -1:]
    return np.minimum((cumulative < target).sum(axis=1), cumulative.shape[1] - 1)
