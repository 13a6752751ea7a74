"""Two ALS engines behind one interface: `fit(matrix, params) -> FactorModel`.

- `implicit`: implicit's AlternatingLeastSquares (CPU, conjugate gradient), single node.
- `spark`: Spark MLlib ALS with implicitPrefs=True, for data beyond one machine.

Both take the same users x items matrix of interaction values and the same `ALSParams`, apply
the same confidence c = 1 + alpha * w(r) (weighting.py), and return factors over the same
indices, so splits, tuning, evaluation and recommendations do not know which engine ran.
One difference is the engines' own: Spark scales the regularization of each user (item) by
its number of interactions (ALS-WR), implicit does not; so each engine declares the range its
tuning searches (`regularization_range`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from audotics.errors import AudoticsError
from audotics.settings import Settings

ENGINES = ("implicit", "spark")


class EngineError(AudoticsError):
    """An engine cannot be chosen or could not fit."""


@dataclass(frozen=True)
class ALSParams:
    factors: int = 64
    regularization: float = 1.0
    alpha: float = 5.0
    iterations: int = 15
    weighting: str = "none"
    seed: int = 42

    @classmethod
    def from_settings(cls, settings: Settings) -> ALSParams:
        return cls(
            factors=settings.recommender_factors,
            regularization=settings.recommender_regularization,
            alpha=settings.recommender_alpha,
            iterations=settings.recommender_iterations,
            weighting=settings.recommender_weighting,
            seed=settings.recommender_seed,
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ALSParams:
        """The params among `values` (a registry row's params also hold the tuning summary)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


@dataclass(frozen=True)
class FactorModel:
    """What an engine learnt: row u of user_factors is user index u, likewise for items."""

    engine: str
    params: ALSParams
    user_factors: np.ndarray  # (n_users, factors) float32
    item_factors: np.ndarray  # (n_items, factors) float32
    fit_seconds: float


class Engine(Protocol):
    name: str
    # the tuning's log-uniform range of `regularization`, in this engine's own scale
    regularization_range: tuple[float, float]

    def fit(self, matrix: sp.csr_matrix, params: ALSParams) -> FactorModel: ...


def engine_name(settings: Settings, n_interactions: int, requested: str | None = None) -> str:
    """The engine to use: the one requested, else the setting, where `auto` picks by size."""
    name = requested or settings.recommender_engine
    if name == "auto":
        big = n_interactions >= settings.recommender_spark_min_interactions
        return "spark" if big else "implicit"
    if name not in ENGINES:
        raise EngineError(f"engine {name!r} is not one of {(*ENGINES, 'auto')}")
    return name


def make_engine(name: str, settings: Settings) -> Engine:
    """An engine by name; Spark (and its JVM) is only started when asked for."""
    if name == "implicit":
        from spark_jobs.recommender.engines.implicit_als import ImplicitALS

        return ImplicitALS()
    if name == "spark":
        from audotics.spark import spark_session
        from spark_jobs.recommender.engines.spark_als import SparkALS

        checkpoints = str(settings.state_dir / "spark-checkpoints")
        return SparkALS(spark_session(settings, "audotics-train-als"), checkpoints)
    raise EngineError(f"engine {name!r} is not one of {ENGINES}")
