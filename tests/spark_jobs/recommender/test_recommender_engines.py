"""The two engines behind one interface agree on an obvious example, and the engine choice."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from spark_jobs.recommender.data import Interactions
from spark_jobs.recommender.engines import ALSParams, engine_name
from spark_jobs.recommender.engines.implicit_als import ImplicitALS
from spark_jobs.recommender.engines.spark_als import SparkALS
from spark_jobs.recommender.ranking import factor_scorer, rank_items
from spark_jobs.recommender.spark_data import from_interactions
from spark_jobs.recommender.spark_evaluation import model_candidates, top_k_unseen


def two_tribes() -> tuple[sp.csr_matrix, np.ndarray]:
    """Users 0-11 play items 0-5, users 12-23 items 6-11; each user misses two of their tribe's
    items (a different pair per user). Returns the matrix and each user's missing pair."""
    rows, cols, missing = [], [], []
    for user in range(24):
        tribe = np.arange(6) + (6 if user >= 12 else 0)
        skipped = tribe[[user % 6, (user + 1) % 6]]
        missing.append(sorted(skipped))
        for item in tribe:
            if item not in skipped:
                rows.append(user)
                cols.append(item)
    matrix = sp.csr_matrix((np.full(len(rows), 3.0), (rows, cols)), shape=(24, 12))
    return matrix, np.array(missing)


def top_two(model, matrix: sp.csr_matrix) -> np.ndarray:
    scorer = factor_scorer(model.user_factors, model.item_factors)
    ids, _ = rank_items(scorer, np.arange(matrix.shape[0]), 2, n_items=12, seen=matrix)
    return np.sort(ids, axis=1)


def spark_top_two(model, data) -> np.ndarray:
    """Each user's two best unseen items, ranked by Spark jobs on the Spark model's factors."""
    users = data.pairs.groupBy("user").count().withColumnRenamed("count", "n_seen")
    ranked = top_k_unseen(model_candidates(model), users, data.pairs, 2, data.n_items)
    ids = np.full((data.n_users, 2), -1)
    for row in ranked.collect():
        ids[row["user"], row["rank"] - 1] = row["item"]
    return np.sort(ids, axis=1)


def test_spark_and_implicit_recommend_the_same_items(spark, tmp_path) -> None:
    matrix, missing = two_tribes()
    params = ALSParams(factors=2, regularization=0.1, alpha=5.0, iterations=15, seed=1)
    implicit_model = ImplicitALS(num_threads=1).fit(matrix, params)
    data = from_interactions(
        spark, Interactions(np.arange(24), np.arange(12), *matrix_pairs(matrix), None)
    )
    spark_model = SparkALS(spark, str(tmp_path / "checkpoints")).fit(data, params)
    assert implicit_model.user_factors.shape == (24, 2)
    assert spark_model.user_factors.count() == 24 and spark_model.item_factors.count() == 12
    assert np.array_equal(top_two(implicit_model, matrix), missing)
    assert np.array_equal(spark_top_two(spark_model, data), missing)


def matrix_pairs(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pairs = matrix.tocoo()
    return pairs.row.astype(np.int32), pairs.col.astype(np.int32), pairs.data


def test_engine_choice(make_settings, tmp_path) -> None:
    settings = make_settings(tmp_path, recommender_spark_min_interactions=1_000)
    assert engine_name(settings, 999) == "implicit"
    assert engine_name(settings, 1_000) == "spark"
    assert engine_name(settings, 10**9, "implicit") == "implicit"
