"""The `warehouse` DAG: Cosmos renders every dbt source, model and test as its own task after the
load, and `airflow dags test` runs it offline (SQLite) on the hand-checked world.

Every dbt task is a dbt invocation (seconds each), so the run executes the load and the chain
behind dim_users (a source freshness check, staging, the facts, the dimension, their tests and a
cross-model test) and marks the other tasks successful (--mark-success-pattern): the same kinds
of operator, a fraction of the time (a full run executes all 76 tasks the same way)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audotics.settings import Settings
from tests.support import REPO, python_json
from tests.warehouse.test_warehouse_load import fetch, write_world

DAG_FILE = REPO / "dags" / "warehouse_dag.py"
RUN_CHAIN = [
    "load_raw",
    "dbt.lake_events_source",
    *[
        f"dbt.{model}.{step}"
        for model in ("stg_events", "stg_users", "fct_listening_events",
                      "fct_daily_user_activity", "dim_users")
        for step in ("run", "test")
    ],
    "dbt.assert_no_event_before_user_signup_test",
]  # fmt: skip
# The task graph as the scheduler sees it: {task_id: [upstream task ids]} and the schedule.
DESCRIBE_DAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["warehouse"]
print(json.dumps({
    "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
    "schedule": repr(dag.timetable.asset_condition),
}))
"""


@pytest.fixture(scope="module")
def platform(
    isolated_platform, env_for, airflow_home: dict[str, str]
) -> tuple[Settings, dict[str, str]]:
    settings = isolated_platform("warehouse_airflow")
    write_world(settings)
    return settings, {**env_for(settings), **airflow_home}


def test_dag_renders_sources_models_and_tests_after_the_load(platform) -> None:
    _, env = platform
    dag = python_json(DESCRIBE_DAG, str(DAG_FILE), env=env)
    tasks: dict[str, list[str]] = dag["tasks"]

    models = [p.stem for p in (REPO / "dbt" / "models").rglob("*.sql")]
    assert len(models) == 29  # every model of dbt/models, each a task group
    for model in models:
        assert f"dbt.{model}.run" in tasks and f"dbt.{model}.test" in tasks, model
        assert tasks[f"dbt.{model}.test"] == [f"dbt.{model}.run"]
    sources = [t for t in tasks if t.endswith("_source")]
    assert len(sources) == 10  # freshness of every lake table
    assert all(tasks[source] == ["load_raw"] for source in sources)
    # Lineage: a model waits for its parents' tests; a cross-model test for every parent.
    assert tasks["dbt.stg_events.run"] == ["dbt.lake_events_source"]
    assert tasks["dbt.fct_listening_events.run"] == ["dbt.stg_events.test"]
    assert sorted(tasks["dbt.assert_no_event_before_user_signup_test"]) == [
        "dbt.dim_users.test",
        "dbt.fct_listening_events.test",
    ]
    # the load, sources, models x (run, test), and the detached tests
    assert len(tasks) == 1 + 10 + 2 * len(models) + 11
    assert "silver/events" in dag["schedule"] and "models/registry" in dag["schedule"]


def test_dag_runs_under_airflow_dags_test(platform) -> None:
    settings, env = platform
    keep = "|".join(re.escape(task) for task in RUN_CHAIN)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "airflow"), "dags", "test", "warehouse",
            "2026-11-10", "--mark-success-pattern", f"(?!(?:{keep})$).*",
        ],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "state=success" in log
    ran = set(re.findall(r"\[DAG TEST\] end task task_id=(\S+)", log))
    assert set(RUN_CHAIN) <= ran

    # The load task filled raw; the dbt tasks built the chain to the user dimension.
    assert fetch(settings, "select count(*) from raw.events") == [(13,)]
    assert fetch(settings, "select count(*) from marts.fct_listening_events") == [(13,)]
    users = fetch(
        settings,
        "select username, signup_week, active_days, lifetime_plays from marts.dim_users "
        "order by user_id",
    )
    assert users == [
        ("user1", dt.date(2026, 10, 26), 3, 3),
        ("user2", dt.date(2026, 11, 2), 3, 3),
        ("user3", dt.date(2026, 11, 2), 2, 1),
        ("user4", dt.date(2026, 11, 2), 1, 1),
        ("user5", dt.date(2026, 11, 9), 0, 0),
    ]
