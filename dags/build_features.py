"""
### build_features

Runs when `ingest_events` has refreshed silver events, users and tracks (asset schedule, from
the `features` stage of `orchestration.stages`).

1. `as_of_date`: the snapshot date D: the `as_of` param if given (manual runs, backfills),
   else the last day complete in every triggering input (the day before the earliest of their
   newest data-interval ends), else the day before the run.
2. `build_features`: `spark-submit spark_jobs/build_features.py --as-of D` through the Spark
   provider (connection `spark_default`, e.g. `AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type":
   "spark", "host": "local[*]"}'`), with this venv's `spark-submit` and the driver memory of
   the settings (read when the task runs). Replaces the `as_of_date = D` partition of
   features/user_features, features/track_features and features/interactions.
3. `materialize`: snapshot D of each feature view -> the Redis online store.

Logic lives in `spark_jobs.features` and `feature_store`; this file only orchestrates.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, dag, task

from orchestration.airflow_support import (
    DEFAULT_ARGS,
    MACROS,
    START_DATE,
    as_of_date,
    as_of_param,
    outlets,
    schedule,
)
from orchestration.stages import FEATURES

ONLINE_FEATURES = Asset(
    name="online/features", uri="audotics://redis/features", group="feature_store"
)
APPLICATION = Path(__file__).resolve().parents[1] / "spark_jobs" / "build_features.py"
# The interpreter running Airflow is the project's venv: its spark-submit and Python, not PATH's.
PYTHON = sys.executable
SPARK_SUBMIT = str(Path(PYTHON).with_name("spark-submit"))


@dag(
    dag_id=FEATURES.dag_id,
    schedule=schedule(FEATURES),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={
        "as_of": as_of_param("Snapshot date YYYY-MM-DD; empty: derived from the triggering data.")
    },
    doc_md=__doc__,
    tags=["features", "spark", "feature-store"],
)
def build_features():
    @task(outlets=[ONLINE_FEATURES])
    def materialize(as_of: str) -> list[dict[str, str | int | float]]:
        import datetime as dt

        from audotics.settings import get_settings
        from feature_store.online import materialize as materialize_snapshot

        snapshot = dt.date.fromisoformat(as_of)  # the one just built, not the newest there is
        return [m.summary() for m in materialize_snapshot(get_settings(), as_of=snapshot)]

    as_of = as_of_date()
    build = SparkSubmitOperator(
        task_id="build_features",
        conn_id="spark_default",
        application=str(APPLICATION),
        application_args=["--as-of", as_of, "--run-id", "{{ run_id }}"],
        name="build_features",
        spark_binary=SPARK_SUBMIT,
        # Templated: rendered on the worker when the task runs (spark-submit reads it before
        # the driver JVM starts, like --driver-memory).
        conf={"spark.driver.memory": "{{ setting('spark_driver_memory') }}"},
        env_vars={"PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON},
        outlets=outlets(FEATURES, *FEATURES.writes),
    )
    build >> materialize(as_of)


build_features()
