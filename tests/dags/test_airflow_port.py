"""`audotics airflow --port N` (`make airflow`) on a port other than 8080: the UI serves every
DAG of the project without import errors, tasks reach the execution API on N, so a triggered
run succeeds, and the stop leaves nothing behind; a port already taken fails at once, naming
it, starting nothing; an API server that does not answer in time fails the start, and
everything started is stopped."""

from __future__ import annotations

import socket
import subprocess

import pytest

from audotics import lake
from audotics.lake import tables
from demo.world.generate import generate_world
from orchestration.stages import DAG_STAGES
from tests.dags.airflow_server import (
    airflow_server,
    assert_quiet_task_logs,
    free_test_port,
    session_processes,
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_ui_serves_every_dag_and_a_run_succeeds_on_a_port_other_than_8080(
    isolated_platform, env_for, tmp_path
) -> None:
    settings = isolated_platform(
        "airflow_port", world_users=40, world_artists=5, world_tracks=60, world_days=1,
        world_events_per_day=300,
    )  # fmt: skip
    [day] = generate_world(settings, progress=False).days
    env = {**env_for(settings), "AIRFLOW_HOME": str(tmp_path / "airflow")}
    with airflow_server(env, tmp_path / "airflow.log") as server:
        server.run("ingest_events", day)
        expected = {stage.dag_id for stage in DAG_STAGES}
        for dag_id in expected:
            server.wait_for_dag(dag_id)
        listed = server.api.get("/dags", params={"limit": 100}).json()["dags"]
        assert {dag["dag_id"] for dag in listed} >= expected
        errors = server.api.get("/importErrors").json()
        assert errors["total_entries"] == 0, errors
    [run] = lake.read_arrow(settings, tables.INGEST_RUNS).to_pylist()
    assert run["status"] == "success"
    task_logs = assert_quiet_task_logs(tmp_path / "airflow", max_lines=60)
    assert any("reconcile" in name for name in task_logs), sorted(task_logs)


def test_a_taken_port_fails_at_once_naming_it(settings, env_for, tmp_path) -> None:
    port = free_test_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(
            ["audotics", "airflow", "--port", str(port)],
            env={**env_for(settings), "AIRFLOW_HOME": str(tmp_path / "airflow")},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"port {port} is already in use" in done.stderr
    assert not (tmp_path / "airflow").exists()  # nothing started, not even the migration


@pytest.mark.timeout(300)
def test_an_api_server_that_does_not_answer_in_time_stops_everything(
    settings, env_for, tmp_path
) -> None:
    env = {
        **env_for(settings),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AUDOTICS_AIRFLOW_STARTUP_TIMEOUT_SECONDS": "1",  # no API server starts that fast
    }
    process = subprocess.Popen(
        ["audotics", "airflow", "--port", str(free_test_port())], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 1
    assert "did not answer" in stderr and "within 1s" in stderr, stderr[-2000:]
    assert not session_processes(process.pid), "processes left after a failed start"
