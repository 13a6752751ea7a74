"""Confidence weighting by hand, and the random search's contract."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from demo.synthetic import clustered_interactions
from spark_jobs.recommender.data import index_interactions
from spark_jobs.recommender.engines import ALSParams
from spark_jobs.recommender.engines.implicit_als import ImplicitALS
from spark_jobs.recommender.splits import stratified_split
from spark_jobs.recommender.tuning import random_search
from spark_jobs.recommender.weighting import bm25, confidence


def test_confidence_options() -> None:
    matrix = sp.csr_matrix(np.array([[3.0, 0.0], [1.0, 1.0]]))
    assert confidence(matrix, "none", 2.0).toarray().tolist() == [[7.0, 0.0], [3.0, 3.0]]
    log = confidence(matrix, "log", 1.0).toarray()
    assert log[0, 0] == pytest.approx(1 + math.log(4))
    assert log[0, 1] == 0.0  # unobserved pairs stay unstored (confidence 1 in the model)


def test_bm25_by_hand() -> None:
    # 2 users x 2 items; K1 = 1, B = 1. Item totals 4 and 1 (mean 2.5): length norms 1.6, 0.4.
    # idf: user 0 has 1 item -> log 2 - log 2 = 0; user 1 has 2 items -> max(0, log 2 - log 3) = 0
    matrix = sp.csr_matrix(np.array([[3.0, 0.0], [1.0, 1.0]]))
    assert bm25(matrix, k1=1.0, b=1.0).toarray().tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # 4 items, so idf(user 0) = log 4 - log 2 = log 2, idf(user 1) = log 4 - log 3
    wide = sp.csr_matrix(np.array([[3.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]))
    weights = bm25(wide, k1=1.0, b=1.0).toarray()
    assert weights[0, 0] == pytest.approx(3 * 2 / (1.6 + 3) * math.log(2), rel=1e-6)
    assert weights[1, 1] == pytest.approx(1 * 2 / (0.4 + 1) * math.log(4 / 3), rel=1e-6)


def test_random_search_starts_with_the_defaults_and_keeps_the_best() -> None:
    users, items, plays = clustered_interactions(200, 60, 4_000, clusters=6, seed=5)
    data = index_interactions(
        pa.table({"user_id": users.astype(str), "item_id": items.astype(str), "weight": plays})
    )
    train = stratified_split(data, 0.75, 1).train
    defaults = ALSParams(factors=8, iterations=5, seed=3)
    result = random_search(
        ImplicitALS(num_threads=1),
        train,
        lambda part: stratified_split(part, 0.75, 2),
        defaults,
        k=5,
        trials=4,
        budget_seconds=60,
    )
    assert len(result.trials) == 4
    assert result.trials[0].params == defaults
    assert result.best == max(result.trials, key=lambda t: t.score).params
    assert len({t.params for t in result.trials}) == 4
    skipped = random_search(
        ImplicitALS(), train, lambda part: stratified_split(part, 0.75, 2), defaults,
        k=5, trials=0, budget_seconds=60,
    )  # fmt: skip
    assert skipped.best == defaults and skipped.trials == []
