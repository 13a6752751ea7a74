"""Every file of `dags/` as Airflow's DAG processor sees it: it imports without errors, carries
tags, retries its tasks, and parses without the platform: no settings read (an invalid setting
in the environment would fail it), no PostgreSQL or Redis (both unreachable), no Spark, Great
Expectations or dbt imported."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO, python_json

DAGS = REPO / "dags"
# Retries 0 on purpose: a verdict, not a transient failure.
NO_RETRIES = {("train_recommender", "gate")}
# What parsing must not import: engines only tasks need, and the stage packages whose modules
# run in tasks (`warehouse.dbt` is allowed: the warehouse DAG needs the dbt project's location).
HEAVY = {"pyspark", "great_expectations", "dbt", "streamlit", "implicit"}
STAGE_PACKAGES = {
    "demo", "ingestion", "expectations", "feature_store", "spark_jobs", "serving", "dashboards"
}  # fmt: skip
PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {path: str(error) for path, error in bag.import_errors.items()},
    "files": sorted({dag.fileloc for dag in bag.dags.values()}),
    "dags": {
        dag_id: {"tags": sorted(dag.tags), "retries": {t.task_id: t.retries for t in dag.tasks}}
        for dag_id, dag in bag.dags.items()
    },
    "modules": sorted(sys.modules),
}))
"""


def platform_unreachable(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDOTICS_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        AUDOTICS_HOME=str(tmp_path / "state"),
        AUDOTICS_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        AUDOTICS_REDIS_URL="redis://127.0.0.1:1/0",
        AUDOTICS_WORLD_USERS="abc",  # not an int: any get_settings() raises
    )
    return env


def test_every_dag_file_parses_without_the_platform_and_retries(tmp_path) -> None:
    env = platform_unreachable(tmp_path)
    settings = subprocess.run(
        [sys.executable, "-c", "from audotics.settings import get_settings; get_settings()"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert settings.returncode != 0 and "world_users" in settings.stderr  # the trap is armed

    bag = python_json(PARSE, str(DAGS), env=env, timeout=600)

    assert bag["errors"] == {}
    assert bag["files"] == sorted(str(path) for path in DAGS.glob("*.py"))
    for dag_id, dag in bag["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        for task_id, retries in dag["retries"].items():
            if (dag_id, task_id) in NO_RETRIES:
                assert retries == 0, f"{dag_id}.{task_id}"
            else:
                assert retries > 0, f"{dag_id}.{task_id} never retries"
    imported = {module.split(".")[0] for module in bag["modules"]}
    assert imported & HEAVY == set()
    assert imported & STAGE_PACKAGES == set()
