"""
### build_features

Runs when `ingest_events` has refreshed silver events, users and tracks (asset schedule).

1. `as_of_date`: the snapshot date D: the `as_of` param if given (manual runs, backfills),
   else the last day complete in every triggering input (the day before the earliest of their
   newest data-interval ends), else the day before the run.
2. `build_features`: `spark-submit spark_jobs/build_features.py --as-of D` through the Spark
   provider (connection `spark_default`, e.g. `AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type":
   "spark", "host": "local[*]"}'`), with this venv's `spark-submit`. Replaces the `as_of_date = D`
   partition of features/user_features, features/track_features and features/interactions.
3. `materialize`: the newest offline snapshot of each feature view -> the Redis online store.

Logic lives in `spark_jobs.features` and `feature_store`; this file only orchestrates.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, dag, task

from audotics.assets import lake_asset
from audotics.orchestration import DEFAULT_ARGS, START_DATE, as_of_param
from audotics.settings import get_settings

SILVER_INPUTS = [lake_asset("silver", table) for table in ("events", "users", "tracks")]
FEATURE_TABLES = [
    lake_asset("features", table) for table in ("user_features", "track_features", "interactions")
]
ONLINE_FEATURES = Asset(
    name="online/features", uri="audotics://redis/features", group="feature_store"
)
APPLICATION = Path(__file__).resolve().parents[1] / "spark_jobs" / "build_features.py"
# The interpreter running Airflow is the project's venv: its spark-submit and Python, not PATH's.
PYTHON = sys.executable
SPARK_SUBMIT = str(Path(PYTHON).with_name("spark-submit"))


@dag(
    dag_id="build_features",
    schedule=SILVER_INPUTS,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "as_of": as_of_param("Snapshot date YYYY-MM-DD; empty: derived from the triggering data.")
    },
    doc_md=__doc__,
    tags=["features", "spark", "feature-store"],
)
def build_features():
    @task
    def as_of_date(params=None, data_interval_end=None, triggering_asset_events=None, dag_run=None):
        import datetime as dt

        from spark_jobs.features.snapshot import snapshot_date_for

        if params and params.get("as_of"):
            return dt.date.fromisoformat(params["as_of"]).isoformat()
        if data_interval_end:  # a run with a data interval (manual with a date, `dags test`)
            ends = {"run": [data_interval_end]}
        else:
            ends = {
                asset.name: [
                    event.source_dag_run.data_interval_end if event.source_dag_run else None
                    for event in events
                ]
                for asset, events in (triggering_asset_events or {}).items()
            }
        return snapshot_date_for(ends, fallback=dag_run.run_after).isoformat()

    @task(outlets=[ONLINE_FEATURES])
    def materialize() -> list[dict[str, str | int | float]]:
        from feature_store.online import materialize as materialize_newest

        return [m.summary() for m in materialize_newest(get_settings())]

    as_of = as_of_date()
    build = SparkSubmitOperator(
        task_id="build_features",
        conn_id="spark_default",
        application=str(APPLICATION),
        application_args=["--as-of", as_of, "--run-id", "{{ run_id }}"],
        name="build_features",
        spark_binary=SPARK_SUBMIT,
        driver_memory=get_settings().spark_driver_memory,
        env_vars={"PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON},
        outlets=FEATURE_TABLES,
    )
    build >> materialize()


build_features()
