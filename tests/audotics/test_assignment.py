"""Assignment as a pure function: stable, and splitting traffic as the shares say."""

from __future__ import annotations

import math
import uuid

import pytest

from audotics.assignment import SCALE, assign, bounds, bucket

IDS = [str(uuid.UUID(int=i * 7_919 + 1)) for i in range(100_000)]


def test_the_bucket_is_the_first_8_hex_digits_of_the_salted_sha1() -> None:
    # sha1("s1:u1") starts a86aafb4: pinned, since Lua (serving/api.py) and the demo world
    # must compute the same number.
    assert bucket("s1", "u1") == 0xA86AAFB4 == 2_825_564_084


def test_bounds_are_cumulative_and_end_at_the_scale() -> None:
    assert bounds([0.5, 0.5]) == [SCALE // 2, SCALE]
    assert bounds([0.1, 0.2, 0.7]) == [round(0.1 * SCALE), round(0.1 * SCALE + 0.2 * SCALE), SCALE]


def test_the_same_user_gets_the_same_arm_and_salts_reshuffle() -> None:
    first = [assign("exp-1", user, [0.5, 0.5]) for user in IDS[:1000]]
    assert first == [assign("exp-1", user, [0.5, 0.5]) for user in IDS[:1000]]
    other_salt = [assign("exp-2", user, [0.5, 0.5]) for user in IDS[:1000]]
    assert 400 < sum(a == b for a, b in zip(first, other_salt, strict=True)) < 600


@pytest.mark.parametrize("shares", [[0.5, 0.5], [0.1, 0.2, 0.7], [0.9, 0.1]])
def test_the_split_matches_the_shares_within_sampling_error(shares: list[float]) -> None:
    counts = [0] * len(shares)
    for user in IDS:
        counts[assign("split", user, shares)] += 1
    for count, share in zip(counts, shares, strict=True):
        sigma = math.sqrt(len(IDS) * share * (1 - share))
        assert abs(count - len(IDS) * share) < 4 * sigma, (counts, shares)
