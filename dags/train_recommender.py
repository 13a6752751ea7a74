"""
### train_recommender

Runs when `features/interactions` has a new version (asset schedule).

1. `train`: snapshot features/interactions as of the `as_of` param (default: its newest date),
   tune ALS on the training window, fit on the snapshot, write models/*_factors, register a
   `candidate` in models/registry. Returns the model version.
2. `evaluate`: temporal hold-out metrics of the model and of the popularity baseline.
3. `gate`: a model that does not beat the baseline, or falls more than the margin below the
   published model, is marked `rejected` with the reason and the run FAILS here
   (`GateRejected: model ... rejected, not published: ...`); nothing after it runs.
4. `register`: marks the model `published`.
5. `recommend`: gold/recommendations and gold/similar_tracks for that model version.

Logic lives in `spark_jobs.recommender.train`; this file only orchestrates.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from audotics.assets import lake_asset
from audotics.orchestration import DEFAULT_ARGS, START_DATE, as_of_param
from audotics.settings import get_settings


def _as_of(params: dict | None):
    import datetime as dt

    value = (params or {}).get("as_of")
    return dt.date.fromisoformat(value) if value else None


@dag(
    dag_id="train_recommender",
    schedule=[lake_asset("features", "interactions")],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"as_of": as_of_param("Interactions snapshot date YYYY-MM-DD; empty: the newest.")},
    doc_md=__doc__,
    tags=["recommender", "als", "training"],
)
def train_recommender():
    @task(outlets=[lake_asset("models", "user_factors"), lake_asset("models", "item_factors")])
    def train(params=None) -> str:
        from spark_jobs.recommender.train import train_step

        return train_step(get_settings(), _as_of(params))

    @task
    def evaluate(version: str) -> str:
        from spark_jobs.recommender.train import evaluate_step

        evaluate_step(get_settings(), version)
        return version

    @task(retries=0)  # a rejection is a verdict, not a transient failure
    def gate(version: str) -> str:
        from spark_jobs.recommender.train import gate_step

        gate_step(get_settings(), version)
        return version

    @task(outlets=[lake_asset("models", "registry")])
    def register(version: str) -> str:
        from spark_jobs.recommender.train import register_step

        register_step(get_settings(), version)
        return version

    @task(outlets=[lake_asset("gold", "recommendations"), lake_asset("gold", "similar_tracks")])
    def recommend(version: str) -> dict[str, int]:
        from spark_jobs.recommender.train import recommend_step

        return recommend_step(get_settings(), version)

    recommend(register(gate(evaluate(train()))))


train_recommender()
