"""
### train_recommender

Runs when `features/interactions` has a new version (asset schedule, from the `train` stage of
`orchestration.stages`).

1. `as_of_date`: the snapshot date D: the `as_of` param if given (manual runs, backfills), else
   the day the triggering `build_features` run built (traced back to the data intervals of the
   ingestion runs behind it), else the day before the run. Never "the newest there is".
2. `train`: snapshot features/interactions as of D, tune ALS on the training window, fit on the
   snapshot, write models/*_factors, register a `candidate` in models/registry. Returns the
   model version.
3. `evaluate`: temporal hold-out metrics of the model and of the popularity baseline.
4. `gate`: a model that does not beat the baseline, or falls more than the margin below the
   published model, is marked `rejected` with the reason. A verdict, not a failure: the task
   is SKIPPED with the reason and the published model keeps serving; on a first night (no
   model published yet) the popularity baseline goes on as its own version instead.
5. `register`: marks the model (or the baseline) `published`.
6. `recommend`: gold/recommendations and gold/similar_tracks for that version.

Logic lives in `spark_jobs.recommender.train`; this file only orchestrates.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from audotics.lake import tables
from orchestration.airflow_support import (
    DEFAULT_ARGS,
    START_DATE,
    as_of_date,
    as_of_param,
    outlets,
    schedule,
)
from orchestration.stages import TRAIN


@dag(
    dag_id=TRAIN.dag_id,
    schedule=schedule(TRAIN),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "as_of": as_of_param("Interactions snapshot date YYYY-MM-DD; empty: the triggering one.")
    },
    doc_md=__doc__,
    tags=["recommender", "als", "training"],
)
def train_recommender():
    @task(outlets=outlets(TRAIN, tables.USER_FACTORS, tables.ITEM_FACTORS))
    def train(as_of: str) -> str:
        import datetime as dt

        from audotics.settings import get_settings
        from spark_jobs.recommender.train import train_step

        return train_step(get_settings(), dt.date.fromisoformat(as_of))

    @task
    def evaluate(version: str) -> str:
        from audotics.settings import get_settings
        from spark_jobs.recommender.train import evaluate_step

        evaluate_step(get_settings(), version)
        return version

    @task(retries=0)  # a rejection is a verdict, not a transient failure
    def gate(version: str) -> str:
        from airflow.exceptions import AirflowSkipException

        from audotics.settings import get_settings
        from spark_jobs.recommender.train import gate_or_baseline

        verdict = gate_or_baseline(get_settings(), version)
        if verdict.version is None:  # the published model keeps serving: skip, not fail
            raise AirflowSkipException(verdict.rejected)
        return verdict.version

    @task(outlets=outlets(TRAIN, tables.MODEL_REGISTRY))
    def register(version: str) -> str:
        from audotics.settings import get_settings
        from spark_jobs.recommender.train import register_step

        register_step(get_settings(), version)
        return version

    @task(outlets=outlets(TRAIN, tables.RECOMMENDATIONS, tables.SIMILAR_TRACKS))
    def recommend(version: str) -> dict[str, int]:
        from audotics.settings import get_settings
        from spark_jobs.recommender.train import recommend_step

        return recommend_step(get_settings(), version)

    recommend(register(gate(evaluate(train(as_of_date())))))


train_recommender()
