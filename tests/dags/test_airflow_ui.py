"""`make airflow` serves the UI: start it, list the DAGs through the REST API, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import httpx

from audotics.services import free_port
from orchestration.stages import DAG_STAGES

EXPECTED_DAGS = {stage.dag_id for stage in DAG_STAGES}
STARTUP_TIMEOUT_S = 420  # api-server, scheduler, dag-processor and triggerer on 2 busy cores
PORT_RELEASE_TIMEOUT_S = 30


def test_airflow_ui_starts_lists_the_dags_and_stops(settings, env_for, tmp_path) -> None:
    port = free_port()
    env = {**env_for(settings), "AIRFLOW_HOME": str(tmp_path / "airflow")}
    process = subprocess.Popen(
        ["audotics", "airflow", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        dag_ids: set[str] = set()
        while time.monotonic() < deadline and not dag_ids >= EXPECTED_DAGS:
            assert process.poll() is None, "airflow standalone exited early"
            try:
                answer = httpx.get(f"{base}/api/v2/dags", params={"limit": 100}, timeout=5)
                if answer.status_code == 200:
                    dag_ids = {dag["dag_id"] for dag in answer.json()["dags"]}
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(3)
        assert dag_ids >= EXPECTED_DAGS, f"DAGs listed: {sorted(dag_ids)}"
        errors = httpx.get(f"{base}/api/v2/importErrors", timeout=5).json()
        assert errors["total_entries"] == 0, errors
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.poll() is not None
    # The port is free again, nothing left behind: the API server's workers exit a moment after
    # the group leader on a busy machine, so give them a bounded grace period.
    deadline = time.monotonic() + PORT_RELEASE_TIMEOUT_S
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _listening(port), f"port {port} still answers after airflow stopped"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
