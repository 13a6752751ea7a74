"""Which arm of an experiment a user gets: a pure function of (user id, salt), so the same user
lands in the same arm on every request, in every process and after restarts.

In the core and dependency-free on purpose: the read API's Lua script (`READ_SCRIPT` in
serving/api.py) computes the same bucket with `redis.sha1hex`, and the demo world assigns its
simulated users with it, so the world's exposure and the API's agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SCALE = 2**32  # buckets: the first 8 hex digits of a SHA-1
# A sample-ratio-mismatch p-value below this means the split is not the planned one (broken
# assignment or exposure logging): the usual threshold of experimentation platforms. The
# nightly decision stops such an experiment; the dashboards flag it.
SRM_ALPHA = 0.001


def bucket(salt: str, user_id: str) -> int:
    """The user's bucket in [0, SCALE): the share of traffic below it is bucket / SCALE."""
    return int(hashlib.sha1(f"{salt}:{user_id}".encode()).hexdigest()[:8], 16)


def bounds(shares: Sequence[float]) -> list[int]:
    """Each arm's exclusive upper bucket: cumulative shares in whole buckets, so Python and Lua
    compare integers and can never disagree on a rounding. The last arm ends at SCALE."""
    total, upper = 0.0, []
    for share in shares:
        total += share
        upper.append(round(total * SCALE))
    upper[-1] = SCALE
    return upper


def assign(salt: str, user_id: str, shares: Sequence[float]) -> int:
    """The index of the arm `user_id` is served, arms taking `shares` of the traffic in order."""
    user_bucket = bucket(salt, user_id)
    return next(i for i, upper in enumerate(bounds(shares)) if user_bucket < upper)
