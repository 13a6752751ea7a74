"""The `warehouse` DAG: after the load, one `dbt build` (Cosmos' watcher producer) runs the
project, and a task per dbt source, model, model's tests and cross-model test reports that node's
result; `airflow dags test` runs all of it offline (SQLite) on the hand-checked world, and a
failing dbt test fails its task and the run."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audotics.settings import Settings
from tests.support import REPO, python_json
from tests.warehouse.test_warehouse_load import fetch, write_world

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_FILE = REPO / "dags" / "warehouse_dag.py"
PRODUCER = "dbt.dbt_producer_watcher"
BUILT = f"{PRODUCER}_done"  # the build's end marker: success, or failed and retried
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


def dags_test(env: dict[str, str], day: str) -> tuple[str, dict[str, str]]:
    """Run the DAG under `airflow dags test`; its log and the final state of every task."""
    result = subprocess.run(
        [AIRFLOW, "dags", "test", "warehouse", day],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    log = result.stdout + result.stderr
    run_id = re.search(r"DagRun Finished: .*?run_id=(\S+),", log)
    assert run_id, log[-5000:]
    states = subprocess.run(
        [AIRFLOW, "tasks", "states-for-dag-run", "warehouse", run_id.group(1), "-o", "json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = json.loads(states.stdout.strip().splitlines()[-1])
    return log, {row["task_id"]: row["state"] for row in rows}


def test_dag_renders_one_build_and_a_task_per_node_after_the_load(platform) -> None:
    _, env = platform
    dag = python_json(DESCRIBE_DAG, str(DAG_FILE), env=env)
    tasks: dict[str, list[str]] = dag["tasks"]

    assert tasks[PRODUCER] == ["load_raw"]  # the one dbt build, after the load
    models = [p.stem for p in (REPO / "dbt" / "models").rglob("*.sql")]
    assert len(models) == 35  # every model of dbt/models, each a task group
    for model in models:
        assert f"dbt.{model}.run" in tasks and f"dbt.{model}.test" in tasks, model
        assert tasks[f"dbt.{model}.test"] == [f"dbt.{model}.run"]
    sources = [t for t in tasks if t.endswith("_source")]
    assert len(sources) == 10  # freshness of every lake table
    assert all(tasks[source] == [BUILT] for source in sources)  # first nodes: after the build
    assert tasks[BUILT] == [PRODUCER]
    # Lineage: a model waits for its parents' tests; a cross-model test for every parent.
    assert tasks["dbt.stg_events.run"] == ["dbt.lake_events_source"]
    assert tasks["dbt.fct_listening_events.run"] == ["dbt.stg_events.test"]
    assert tasks["dbt.assert_no_event_before_user_signup_test"] == [
        "dbt.dim_users.test",
        "dbt.fct_listening_events.test",
    ]
    # the load, the build and its end marker, sources, models x (run, test), detached tests,
    # then the decision on the running experiments, after every node of the build
    assert len(tasks) == 1 + 2 + 10 + 2 * len(models) + 13 + 1
    nodes = {task: ups for task, ups in tasks.items() if task.startswith("dbt.")}
    leaves = set(nodes) - {up for ups in nodes.values() for up in ups}
    assert set(tasks["decide_experiments"]) == leaves
    assert "silver/events" in dag["schedule"] and "models/registry" in dag["schedule"]


def test_dag_runs_every_node_under_airflow_dags_test(platform) -> None:
    settings, env = platform
    log, states = dags_test(env, "2026-11-10")

    assert "state=success" in log, log[-5000:]
    assert set(states.values()) == {"success"}, {t: s for t, s in states.items() if s != "success"}
    assert log.count(f"starting task_id={PRODUCER} ") == 1  # one build, no per-node dbt run
    # The load task filled raw; the build made every mart, down to the user dimension.
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


def test_a_failing_dbt_test_fails_its_task_and_the_run(platform) -> None:
    settings, env = platform
    # A value outside the closed vocabulary: stg_users' accepted_values test fails. The lake is
    # unchanged, so the load leaves raw.users as it is.
    assert fetch(
        settings, "update raw.users set subscription = 'gold' where username = 'user1' returning 1"
    ) == [(1,)]
    # Every failing task retries (DEFAULT_ARGS): seconds apart, not the deployed 30 s.
    log, states = dags_test({**env, "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1"}, "2026-11-11")

    assert "state=failed" in log, log[-5000:]
    assert states["dbt.stg_users.run"] == "success"
    assert states["dbt.stg_users.test"] == "failed"
    assert states["dbt.dim_users.run"] == "upstream_failed"  # dbt skipped it: never reported
    assert states["dbt.stg_tracks.test"] == "success"  # a branch of its own still reports
