"""evaluation.py's protocol as Spark jobs: top-k without the seen items, for the model and the
popularity baseline, scored by spark_metrics on the same split.

Users evaluated: those with at least one training and one test pair. Candidate items: those
with at least one training pair (the model's items). Each user's training items are filtered
from the ranking; test items outside the candidates still count as relevant.

Top-k without the seen items: rank `k + d` candidates per user, d the 99th percentile of the
users' seen counts, drop the seen ones and keep the best k; the few users who have seen more
than d items are ranked again, as deep as they need. Each candidate list is a Spark job
(`ALSModel.recommendForUserSubset`: blocked factor products with a bounded top-k per user).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.recommender.data import InteractionsError
from spark_jobs.recommender.engines import ALSParams
from spark_jobs.recommender.engines.spark_als import SparkALS, SparkFactorModel
from spark_jobs.recommender.spark_data import SparkInteractions, SparkSplit, SparkSplitter
from spark_jobs.recommender.spark_metrics import popularity_percentiles, ranking_metrics
from spark_jobs.recommender.tuning import TuningResult, random_search

log = logging.getLogger(__name__)

# (users: a DataFrame with `user`, depth) -> (user, item, score): each user's `depth` best
Candidates = Callable[[DataFrame, int], DataFrame]
SEEN_QUANTILE = 0.99


def model_candidates(model: SparkFactorModel) -> Candidates:
    def candidates(users: DataFrame, depth: int) -> DataFrame:
        lists = model.model.recommendForUserSubset(users.select("user"), depth)
        return lists.select("user", F.explode("recommendations").alias("r")).select(
            "user", F.col("r.item").alias("item"), F.col("r.rating").cast("double").alias("score")
        )

    return candidates


def popularity_candidates(popularity: DataFrame) -> Candidates:
    """The baseline: every user's candidates are the most popular items, (item, popularity)."""

    def candidates(users: DataFrame, depth: int) -> DataFrame:
        top = popularity.orderBy(F.desc("popularity"), "item").limit(depth)
        return (
            users.select("user")
            .crossJoin(F.broadcast(top))
            .select("user", "item", F.col("popularity").cast("double").alias("score"))
        )

    return candidates


def top_k_unseen(
    candidates: Candidates, users: DataFrame, seen: DataFrame, k: int, n_items: int
) -> DataFrame:
    """(user, rank 1..k, item, score) of `users` (user, n_seen), best first (ties: lower item
    index first), without the pairs of `seen` (user, item); lists run short only when fewer
    than k of the `n_items` candidates are left."""
    quantile = users.approxQuantile("n_seen", [SEEN_QUANTILE], 0.001)[0]
    depth = min(n_items, k + math.ceil(quantile))
    lists = candidates(users, depth)
    deeper = users.where(F.col("n_seen") > depth - k)
    if depth < n_items and not deeper.isEmpty():
        deepest = deeper.agg(F.max("n_seen")).first()[0]
        lists = lists.join(deeper, "user", "left_anti").unionByName(
            candidates(deeper, min(n_items, k + deepest))
        )
    unseen = lists.join(seen.select("user", "item"), ["user", "item"], "left_anti")
    order = Window.partitionBy("user").orderBy(F.desc("score"), "item")
    ranked = unseen.withColumn("rank", F.row_number().over(order))
    return ranked.where(F.col("rank") <= k)


def evaluate(candidates: Candidates, split: SparkSplit, k: int) -> dict[str, float]:
    """Metrics at k of `candidates` on `split` (see metrics.py for their definitions)."""
    train = split.train.pairs.select("user", "item")
    test = split.test.pairs.select("user", "item")
    users = (
        train.groupBy("user")
        .agg(F.count(F.lit(1)).alias("n_seen"))
        .join(test.groupBy("user").agg(F.count(F.lit(1)).alias("n_relevant")), "user")
    )
    popularity = train.groupBy("item").agg(F.count(F.lit(1)).alias("popularity"))
    cached = [users.cache(), popularity.cache()]
    try:
        n_users, n_catalog = users.count(), popularity.count()
        if n_users == 0:
            raise InteractionsError(
                "no user has both training and test interactions: nothing to evaluate"
            )
        # the lists feed two aggregations: rank them once
        ranked = top_k_unseen(candidates, users, train, k, n_catalog).cache()
        cached.append(ranked)
        relevant = test.join(users.select("user"), "user")
        metrics = ranking_metrics(
            ranked, users, relevant, k, n_catalog, popularity_percentiles(popularity)
        )
    finally:
        for frame in cached:
            frame.unpersist()
    return {**metrics, "users": float(n_users)}


def evaluate_with_baseline(
    model: SparkFactorModel, split: SparkSplit, k: int
) -> dict[str, dict[str, float]]:
    popularity = split.train.pairs.groupBy("item").agg(F.count(F.lit(1)).alias("popularity"))
    return {
        "model": evaluate(model_candidates(model), split, k),
        "baseline": evaluate(popularity_candidates(popularity), split, k),
    }


def fit_and_score(engine: SparkALS, split: SparkSplit, params: ALSParams, k: int) -> float:
    """One tuning trial: fit on the split's training side, nDCG@k on its test side."""
    model = engine.fit(split.train, params)
    try:
        return evaluate(model_candidates(model), split, k)[f"ndcg@{k}"]
    finally:
        model.release()


def tune(
    engine: SparkALS,
    train: SparkInteractions,
    carve_validation: SparkSplitter,
    defaults: ALSParams,
    *,
    k: int,
    trials: int,
    budget_seconds: float,
) -> TuningResult:
    """tuning.random_search with Spark trials, over the engine's search space and at most its
    `max_trials` (each trial is seconds of Spark jobs)."""
    if trials > engine.max_trials:
        log.info("Spark tuning: %d trials, not %d (SparkALS.max_trials)", engine.max_trials, trials)
    return random_search(
        engine, train, carve_validation, defaults,
        k=k, trials=min(trials, engine.max_trials), budget_seconds=budget_seconds,
        space=engine.search_space, score=fit_and_score,
    )  # fmt: skip
