"""The build_features DAG: parsed by Airflow, wired to the silver and features assets, and
submitting the job with this venv's spark-submit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.support import REPO

SPARK_CONNECTION = '{"conn_type": "spark", "host": "local[2]"}'


def test_dag_runs_the_spark_job_on_silver_updates_then_materializes(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "build_features.py"))
    assert bag.import_errors == {}
    dag = bag.dags["build_features"]
    assert {a.name for a in dag.timetable.asset_condition.objects} == {
        "silver/events",
        "silver/users",
        "silver/tracks",
    }
    assert dag.task_ids == ["as_of_date", "build_features", "materialize"]
    assert dag.get_task("build_features").upstream_task_ids == {"as_of_date"}
    # After the build, of the date it built.
    assert dag.get_task("materialize").upstream_task_ids == {"as_of_date", "build_features"}

    submit = dag.get_task("build_features")
    assert {a.name for a in submit.outlets} == {
        "features/user_features",
        "features/track_features",
        "features/interactions",
    }
    assert [a.name for a in dag.get_task("materialize").outlets] == ["online/features"]
    assert submit.env_vars["PYSPARK_PYTHON"] == sys.executable
    # The driver memory is the settings' when the task runs, not when the file was parsed.
    monkeypatch.setenv("AUDOTICS_SPARK_DRIVER_MEMORY", "3g")
    rendered = dag.get_template_env().from_string(submit.conf["spark.driver.memory"])
    assert rendered.render(**dag.user_defined_macros) == "3g"

    # The command the provider will run, with the connection as the Makefile defines it.
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", SPARK_CONNECTION)
    submit.application_args = ["--as-of", "2026-11-03"]  # as rendered from as_of_date's XCom
    command = submit._get_hook()._build_spark_submit_command(submit.application)
    spark_submit = Path(sys.executable).with_name("spark-submit")
    assert spark_submit.is_file() and os.access(spark_submit, os.X_OK)
    assert command[:3] == [str(spark_submit), "--master", "local[2]"]
    assert command[-3:] == [str(REPO / "spark_jobs" / "build_features.py"), "--as-of", "2026-11-03"]
