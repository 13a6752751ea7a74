"""`audotics airflow` as a test drives it: started as a subprocess on a free port of its own,
DAG runs triggered and awaited through the REST API, then stopped with SIGTERM to the command
alone, checking that it took every process it started with it."""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from audotics.services import port_in_use

STARTUP_TIMEOUT_S = 420  # every component on 2 busy cores
STOP_TIMEOUT_S = 120
TEST_PORTS = range(18000, 19000)

# Only the runs a test triggers: no scheduled or asset-triggered runs beside them, and DAGs
# stay paused until a run is prepared (some of its tasks marked successful beforehand).
TEST_ENV = {
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
}


def free_test_port() -> int:
    for port in random.sample(TEST_PORTS, len(TEST_PORTS)):
        if not port_in_use(port):
            return port
    raise RuntimeError(f"no free port in {TEST_PORTS}")


class AirflowServer:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.log = process, log
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v2", timeout=30)

    def _fail(self, message: str) -> None:
        tail = self.log.read_text(errors="replace")[-4000:]
        raise AssertionError(f"{message}\n--- audotics airflow output ---\n{tail}")

    def _task_instances(self, run: str) -> list[dict]:
        """Every task instance of a run (the API pages them, 100 at most a page)."""
        found: list[dict] = []
        while True:
            page = self.api.get(f"{run}/taskInstances", params={"offset": len(found)}).json()
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def processes(self, *words: str) -> list[psutil.Process]:
        """The processes the command started whose command line (or title) has all `words`."""
        started = psutil.Process(self.process.pid).children()
        return [p for p in started if all(w in " ".join(p.cmdline()) for w in words)]

    def wait_for_dag(self, dag_id: str) -> None:
        """Until the DAG processor has parsed `dag_id` and the API serves it."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"audotics airflow exited early (code {self.process.returncode})")
            try:
                if self.api.get(f"/dags/{dag_id}").status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(2)
        self._fail(f"{dag_id} not served within {STARTUP_TIMEOUT_S}s")

    def run(self, dag_id: str, day: str, conf: dict | None = None,
            mark_success: str | None = None, timeout: float = 900) -> None:  # fmt: skip
        """Trigger `dag_id` for logical date `day` and wait for it to succeed; tasks whose id
        matches `mark_success` are marked successful before the run starts."""
        self.wait_for_dag(dag_id)
        logical_date = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).isoformat()
        answer = self.api.post(
            f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date, "conf": conf or {}}
        )
        assert answer.status_code == 200, answer.text
        run = f"/dags/{dag_id}/dagRuns/{answer.json()['dag_run_id']}"
        if mark_success:
            for task in self._task_instances(run):
                if re.fullmatch(mark_success, task["task_id"]):
                    done = self.api.patch(
                        f"{run}/taskInstances/{task['task_id']}", json={"new_state": "success"}
                    )
                    assert done.status_code == 200, done.text
        self.api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        deadline = time.monotonic() + timeout
        while (state := self.api.get(run).json()["state"]) not in ("success", "failed"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                break
            time.sleep(2)
        if state != "success":
            states = {t["task_id"]: t["state"] for t in self._task_instances(run)}
            self._fail(f"{dag_id} {day} ended {state}: {states}")


@contextmanager
def airflow_server(env: dict[str, str], log: Path, *args: str) -> Iterator[AirflowServer]:
    """`audotics airflow --port <free> *args`; on exit SIGTERM to the command alone, which
    must stop within STOP_TIMEOUT_S, exit 0, and leave no process of its own behind."""
    port = free_test_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            ["audotics", "airflow", "--port", str(port), *args], env={**env, **TEST_ENV},
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = AirflowServer(process, port, log)
    try:
        yield server
        assert psutil.Process(process.pid).children(), "audotics airflow started no process"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_S)
        finally:
            leftovers = session_processes(process.pid)
            for leftover in leftovers:  # never leave them to the next test, whatever happened
                leftover.kill()
    assert code == 0, log.read_text(errors="replace")[-4000:]
    assert not leftovers, f"left running after audotics airflow stopped: {leftovers}"
    assert not port_in_use(port), f"port {port} still answers after audotics airflow stopped"


def session_processes(session_id: int) -> list[psutil.Process]:
    """The processes of a session: all `audotics airflow` started, however deep."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session_id:
                found.append(process)
        except (ProcessLookupError, PermissionError):
            continue
    return found


# What a task log must not hold: the libraries' import chatter (GX registers its functions,
# Cosmos looks for a lineage namespace or an OpenLineage provider, or cannot render an exposure)
# and deprecation warnings.
TASK_LOG_NOISE = (
    "Skipping registering function", "openlineage/namespace", "Unavailable conversion function",
    "DeprecationWarning", "Openlineage events",
)  # fmt: skip


def assert_quiet_task_logs(airflow_home: Path, max_lines: int) -> dict[str, str]:
    """Every task log under `airflow_home` (returned, by task) is free of TASK_LOG_NOISE and at
    most `max_lines` long."""
    logs = {
        path.parent.name + "/" + path.name: path.read_text()
        for path in (airflow_home / "logs").rglob("*.log")
        if "task_id=" in str(path)
    }
    assert logs, f"no task logs under {airflow_home / 'logs'}"
    for name, text in logs.items():
        for noise in TASK_LOG_NOISE:
            assert noise not in text, f"{name}: {noise}"
        assert len(text.splitlines()) <= max_lines, f"{name}:\n{text[-3000:]}"
    return logs
