"""The single-node engine: implicit's AlternatingLeastSquares on the CPU (conjugate gradient).

implicit reads each stored value as the confidence c itself (its `alpha` only multiplies the
matrix), so it gets c = 1 + alpha * w(r) precomputed and alpha=1: Hu et al.'s objective, the
same one Spark solves from w(r) and alpha.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from spark_jobs.recommender.engines import ALSParams, FactorModel
from spark_jobs.recommender.weighting import confidence


class ImplicitALS:
    name = "implicit"
    regularization_range = (0.01, 1000.0)

    def __init__(self, num_threads: int = 0) -> None:
        self.num_threads = num_threads  # 0: every core

    def fit(self, matrix: sp.csr_matrix, params: ALSParams) -> FactorModel:
        started = time.perf_counter()
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=1.0,
            iterations=params.iterations,
            random_state=params.seed,
            num_threads=self.num_threads,
        )
        model.fit(confidence(matrix, params.weighting, params.alpha), show_progress=False)
        return FactorModel(
            engine=self.name,
            params=params,
            user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
            item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
            fit_seconds=time.perf_counter() - started,
        )
