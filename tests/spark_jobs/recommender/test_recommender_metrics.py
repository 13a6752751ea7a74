"""Ranking metrics against examples computed by hand, and the evaluation protocol."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from spark_jobs.recommender import metrics
from spark_jobs.recommender.data import index_interactions
from spark_jobs.recommender.evaluation import evaluate
from spark_jobs.recommender.ranking import popularity_scorer
from spark_jobs.recommender.splits import Split

# user 0: hits at ranks 1 and 3 of 4, 3 relevant items; user 1: one hit at rank 2, 1 relevant
HITS = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=bool)
N_RELEVANT = np.array([3, 1])


def test_precision_and_recall() -> None:
    assert metrics.precision_at_k(HITS, 4).tolist() == [0.5, 0.25]
    assert metrics.precision_at_k(HITS, 2).tolist() == [0.5, 0.5]
    assert metrics.recall_at_k(HITS, N_RELEVANT, 4).tolist() == pytest.approx([2 / 3, 1.0])


def test_ndcg() -> None:
    # user 0: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG (3 relevant) = 1 + 1/log2(3) + 1/2
    ideal = 1 + 1 / math.log2(3) + 0.5
    # user 1: DCG = 1/log2(3); IDCG = 1
    expected = [1.5 / ideal, 1 / math.log2(3)]
    assert metrics.ndcg_at_k(HITS, N_RELEVANT, 4).tolist() == pytest.approx(expected)
    # a perfect list scores 1
    assert metrics.ndcg_at_k(np.array([[1, 1, 0]], bool), np.array([2]), 3)[0] == pytest.approx(1)


def test_average_precision_and_hit_rate() -> None:
    # user 0: (1/1 + 2/3) / min(4, 3); user 1: (1/2) / 1
    expected = [(1 + 2 / 3) / 3, 0.5]
    assert metrics.average_precision_at_k(HITS, N_RELEVANT, 4).tolist() == pytest.approx(expected)
    assert metrics.hit_rate_at_k(HITS, 1).tolist() == [1.0, 0.0]
    assert metrics.hit_rate_at_k(HITS, 2).tolist() == [1.0, 1.0]


def test_coverage_and_popularity_bias() -> None:
    recommended = np.array([[0, 1], [1, -1]])
    assert metrics.catalog_coverage(recommended, 4) == 0.5
    # counts 5, 1, 1, 9: ranks 3, 1.5, 1.5, 4 of 4
    percentiles = metrics.popularity_percentiles(np.array([5, 1, 1, 9]))
    assert percentiles.tolist() == [0.75, 0.375, 0.375, 1.0]
    # recommended items 0, 1, 1: (0.75 + 0.375 + 0.375) / 3
    assert metrics.mean_popularity_percentile(recommended, percentiles) == pytest.approx(0.5)


def test_evaluation_filters_training_items_and_scores_the_baseline() -> None:
    """Training popularity: a (4 users) > b (2) > c (1). User 0 trained on a and holds out c:
    with a filtered, the baseline's list is b, c, so the hit is at rank 2."""
    pairs = [("u0", "a"), ("u0", "c"), ("u1", "a"), ("u1", "b")]
    pairs += [("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "c")]
    data = index_interactions(
        pa.table(
            {
                "user_id": [u for u, _ in pairs],
                "item_id": [i for _, i in pairs],
                "weight": [1.0] * len(pairs),
            }
        )
    )
    held_out = (data.user_ids[data.users] == "u0") & (data.item_ids[data.items] == "c")
    split = Split(data.subset(~held_out), data.subset(held_out))
    popularity = np.bincount(split.train.items, minlength=data.n_items).astype(float)
    result = evaluate(popularity_scorer(popularity), split, k=2)
    assert result["users"] == 1
    assert result["precision@2"] == 0.5
    assert result["recall@2"] == 1.0
    assert result["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert result["hit_rate@2"] == 1.0
    assert result["coverage@2"] == pytest.approx(2 / 3)  # b and c of the 3 candidate items
