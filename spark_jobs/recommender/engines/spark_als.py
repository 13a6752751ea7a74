"""The scale-out engine: Spark MLlib ALS with implicitPrefs=True.

MLlib turns a value r into confidence 1 + alpha * |r|, so it gets w(r) and alpha: the same
c = 1 + alpha * w(r) as the implicit engine. It scales the regularization of each user (item)
by its number of interactions (ALS-WR), so the same `regularization` is stronger here.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, SparkSession

from spark_jobs.recommender.engines import ALSParams, EngineError, FactorModel
from spark_jobs.recommender.weighting import weighted


class SparkALS:
    name = "spark"
    regularization_range = (0.01, 10.0)  # times each row's interaction count (ALS-WR)

    def __init__(self, spark: SparkSession, checkpoint_dir: str | None = None) -> None:
        """`checkpoint_dir` is used when the session has none (`spark.checkpoint.dir`): ALS
        checkpoints every 10 iterations there, else its lineage grows with every iteration
        until task serialization overflows the stack (at about 20 iterations)."""
        self.spark = spark
        if checkpoint_dir and spark.sparkContext.getCheckpointDir() is None:
            spark.sparkContext.setCheckpointDir(checkpoint_dir)

    def fit(self, matrix: sp.csr_matrix, params: ALSParams) -> FactorModel:
        started = time.perf_counter()
        values = weighted(matrix, params.weighting).tocoo()
        ratings = self.spark.createDataFrame(
            pa.table(
                {
                    "user": pa.array(values.row, pa.int32()),
                    "item": pa.array(values.col, pa.int32()),
                    "rating": pa.array(values.data, pa.float32()),
                }
            )
        )
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
            model = als.fit(ratings)
            user_factors = _dense(model.userFactors, matrix.shape[0], params.factors)
            item_factors = _dense(model.itemFactors, matrix.shape[1], params.factors)
        except Exception as exc:  # Py4J and JVM errors: say which step failed
            raise EngineError(f"Spark ALS fit ({matrix.nnz} interactions) failed: {exc}") from exc
        return FactorModel(
            engine=self.name,
            params=params,
            user_factors=user_factors,
            item_factors=item_factors,
            fit_seconds=time.perf_counter() - started,
        )


def _dense(factors: DataFrame, rows: int, rank: int) -> np.ndarray:
    """MLlib's (id, features) rows as a dense matrix; ids MLlib never saw stay zero."""
    table = factors.toArrow()
    result = np.zeros((rows, rank), dtype=np.float32)
    if table.num_rows:
        features = table["features"].combine_chunks().flatten().to_numpy()
        result[table["id"].to_numpy()] = features.reshape(table.num_rows, rank)
    return result
