"""Choose ALS parameters on the user's own data: random search on a validation split.

The validation split is carved from the TRAINING side only (by the same kind of split as the
evaluation), so the test data never influences the parameters it is judged with. The first
trial is the configured defaults, so the search never picks something that did worse than
them on validation. The search stops after `trials` or when the next trial would overrun the
time budget.

The search is deterministic (trials drawn from `defaults.seed`, engines seeded), so the same
data gives the same chosen params, which make the model's identity (`registry.model_version`).
The time budget is an upper bound, meant as a safety net: when it cuts the search short, the
result depends on the machine's speed (logged as a warning).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audotics.progress import progress
from spark_jobs.recommender.engines import ALSParams, Engine
from spark_jobs.recommender.evaluation import evaluate
from spark_jobs.recommender.ranking import factor_scorer
from spark_jobs.recommender.splits import Split
from spark_jobs.recommender.weighting import WEIGHTINGS

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    factors: tuple[int, ...] = (16, 32, 64, 128)
    regularization: tuple[float, float]  # log-uniform, the engine's own range
    alpha: tuple[float, float] = (0.1, 50.0)  # log-uniform
    iterations: tuple[int, ...] = (10, 15, 20)
    weighting: tuple[str, ...] = WEIGHTINGS

    def sample(self, rng: np.random.Generator, seed: int) -> ALSParams:
        return ALSParams(
            factors=int(rng.choice(self.factors)),
            regularization=_log_uniform(rng, *self.regularization),
            alpha=_log_uniform(rng, *self.alpha),
            iterations=int(rng.choice(self.iterations)),
            weighting=str(rng.choice(self.weighting)),
            seed=seed,
        )


# One trial: (engine, validation split, params, k) -> validation nDCG@k. Each engine has its
# own, on its own data (numpy arrays here, DataFrames in spark_evaluation.fit_and_score).
TrialScore = Callable[[Any, Any, ALSParams, int], float]


def fit_and_score(engine: Engine, split: Split, params: ALSParams, k: int) -> float:
    model = engine.fit(split.train.matrix(), params)
    scorer = factor_scorer(model.user_factors, model.item_factors)
    return evaluate(scorer, split, k)[f"ndcg@{k}"]


@dataclass(frozen=True)
class Trial:
    params: ALSParams
    score: float
    seconds: float


@dataclass(frozen=True)
class TuningResult:
    best: ALSParams
    metric: str
    trials: list[Trial] = field(default_factory=list)

    @property
    def best_score(self) -> float:
        return max((t.score for t in self.trials), default=math.nan)

    def summary(self) -> dict[str, float | int | str]:
        return {
            "trials": len(self.trials),
            "seconds": round(sum(t.seconds for t in self.trials), 3),
            "metric": f"validation {self.metric}",
            "best_score": round(self.best_score, 6),
        }


def random_search(
    engine: Any,
    train: Any,
    carve_validation: Callable[[Any], Any],
    defaults: ALSParams,
    *,
    k: int,
    trials: int,
    budget_seconds: float,
    space: SearchSpace | None = None,
    score: TrialScore = fit_and_score,
) -> TuningResult:
    """The best of `trials` parameter sets (defaults first) by nDCG@k on validation. `train`
    and the splits `carve_validation` makes from it are whatever `engine` and `score` work on:
    Interactions for implicit (the default `score`), SparkInteractions for Spark."""
    metric = f"ndcg@{k}"
    if trials <= 0:
        return TuningResult(defaults, metric)
    space = space or SearchSpace(regularization=engine.regularization_range)
    split = carve_validation(train)
    rng = np.random.default_rng(defaults.seed)
    started = time.perf_counter()
    results: list[Trial] = []
    with progress("tuning", total=trials, unit="trial") as bar:
        for number in range(trials):
            params = defaults if number == 0 else space.sample(rng, defaults.seed)
            trial_started = time.perf_counter()
            value = score(engine, split, params, k)
            results.append(Trial(params, value, time.perf_counter() - trial_started))
            log.info("trial %d: %s=%.4f with %s", number, metric, value, params)
            bar.update()
            bar.set_postfix_str(f"best {metric} {max(t.score for t in results):.4f}")
            elapsed = time.perf_counter() - started
            if elapsed + elapsed / len(results) > budget_seconds:  # room for one more trial?
                log.warning(
                    "tuning budget of %.0fs reached after %d of %d trials: the chosen params "
                    "now depend on this machine's speed",
                    budget_seconds,
                    number + 1,
                    trials,
                )
                break
    return TuningResult(max(results, key=lambda t: t.score).params, metric, results)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
