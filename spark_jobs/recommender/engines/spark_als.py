"""The scale-out engine: Spark MLlib ALS with implicitPrefs=True, on DataFrames end to end.

It fits on `SparkInteractions` (spark_data.py) and its factors stay in Spark: the model is
scored, evaluated and turned into lists by Spark jobs (spark_evaluation.py), never collected.

MLlib turns a value r into confidence 1 + alpha * |r|, so it gets w(r) and alpha: the same
c = 1 + alpha * w(r) as the implicit engine. It scales the regularization of each user (item)
by its number of interactions (ALS-WR), so the same `regularization` is stronger here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession

from spark_jobs.recommender.engines import ALSParams, EngineError
from spark_jobs.recommender.spark_data import SparkInteractions, with_rating
from spark_jobs.recommender.tuning import SearchSpace


@dataclass(frozen=True)
class SparkFactorModel:
    """What MLlib learnt; its factor DataFrames (`id`, `features`) are cached on the executors
    until `release`."""

    engine: str
    params: ALSParams
    model: ALSModel
    fit_seconds: float

    @property
    def user_factors(self) -> DataFrame:
        return self.model.userFactors

    @property
    def item_factors(self) -> DataFrame:
        return self.model.itemFactors

    def release(self) -> None:
        """Free the executors' copies of the factors (a tuning trial is done with them)."""
        self.model.userFactors.unpersist()
        self.model.itemFactors.unpersist()


class SparkALS:
    name = "spark"
    regularization_range = (0.01, 10.0)  # times each row's interaction count (ALS-WR)
    # Each Spark trial costs seconds of job overhead, so the search is narrower than implicit's:
    # the ALS-WR scale needs little regularization, and more factors rarely paid off here.
    search_space = SearchSpace(
        factors=(16, 32, 64), regularization=(0.01, 1.0), alpha=(0.1, 20.0), iterations=(15, 20)
    )
    max_trials = 12  # ~10 s each on ML-100K (2 cores): the setting's 30 would take 5 minutes

    def __init__(self, spark: SparkSession, checkpoint_dir: str | None = None) -> None:
        """`checkpoint_dir` is used when the session has none (`spark.checkpoint.dir`): ALS
        checkpoints every 10 iterations there, else its lineage grows with every iteration
        until task serialization overflows the stack (at about 20 iterations)."""
        self.spark = spark
        if checkpoint_dir and spark.sparkContext.getCheckpointDir() is None:
            spark.sparkContext.setCheckpointDir(checkpoint_dir)

    def fit(self, data: SparkInteractions, params: ALSParams) -> SparkFactorModel:
        started = time.perf_counter()
        ratings = with_rating(data.pairs, params.weighting, data.n_items)
        # one block per core: MLlib's default of 10 only adds shuffle overhead on small clusters
        blocks = max(self.spark.sparkContext.defaultParallelism, 1)
        als = ALS(
            rank=params.factors,
            maxIter=params.iterations,
            regParam=params.regularization,
            alpha=params.alpha,
            implicitPrefs=True,
            seed=params.seed,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            numUserBlocks=blocks,
            numItemBlocks=blocks,
        )
        try:
            model = als.fit(ratings.select("user", "item", "rating"))
        except Exception as exc:  # Py4J and JVM errors: say which step failed
            raise EngineError(f"Spark ALS fit failed: {exc}") from exc
        return SparkFactorModel(self.name, params, model, time.perf_counter() - started)
