"""Airflow on this machine: its home under the state folder, the project's DAGs, and
`audotics airflow` for the UI (`make airflow`), in one of two forms: local (`airflow standalone`,
SQLite metadata) or celery (`orchestration.airflow_celery`). Either way every process it starts
is watched, and stopped on Ctrl-C/SIGTERM or when one of them dies. On a real deployment none
of this is used: Airflow's own configuration points at the same `dags/` folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click
import httpx
import psutil

from audotics.errors import AudoticsError
from audotics.services import port_in_use
from audotics.settings import Settings, get_settings, mask_secrets
from orchestration.airflow_celery import celery_components, celery_env

REPO = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 60  # a Celery worker finishes its running tasks first (warm shutdown)
POLL_S = 1.0


class AirflowStartError(AudoticsError):
    """Airflow could not be started, or one of its processes died; the message says which."""


def airflow_env(settings: Settings, *, port: int | None = None) -> dict[str, str]:
    """The environment every local Airflow process gets (CLI, standalone, `dags test`)."""
    port = settings.airflow_port if port is None else port
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(settings.state_dir / "airflow"))
    # Tasks find the state folder (and the services' credentials in it) wherever they run.
    env.setdefault("AUDOTICS_HOME", str(settings.state_dir))
    env.setdefault("AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY", "30")  # seconds, then backoff
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # A laptop UI: everyone who can reach localhost is admin. Never set on a shared server.
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__HOST="127.0.0.1",
        # Task processes report to the execution API, which Airflow otherwise assumes on
        # localhost:8080: on any other port every task would die unheard.
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",  # an offline machine
        # Quiet task logs: Cosmos reads a lineage namespace at import (else a warning), and
        # GX's import logs a line per function it registers.
        AIRFLOW__OPENLINEAGE__NAMESPACE="audotics",
        AIRFLOW__LOGGING__NAMESPACE_LEVELS="great_expectations=WARNING",
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",  # standalone spawns `airflow`
    )
    # JSON form: a URI cannot carry `local[*]` (the brackets read as an IPv6 host).
    env.setdefault(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps({"conn_type": "spark", "host": settings.spark_master}),
    )
    return env


class _Stop(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _migrate(env: dict[str, str]) -> None:
    done = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        output = mask_secrets((done.stdout + done.stderr).strip()[-3000:])
        raise AirflowStartError(f"`airflow db migrate` failed (exit {done.returncode}):\n{output}")


def _exited(processes: dict[str, subprocess.Popen]) -> tuple[str, int] | None:
    for name, process in processes.items():
        if process.poll() is not None:
            return name, process.returncode
    return None


def _wait_for_api(processes: dict[str, subprocess.Popen], port: int, timeout: float) -> None:
    """Return once the API server answers its health check; fail when a process exits first,
    or at the deadline."""
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (gone := _exited(processes)) is not None:
            raise AirflowStartError(f"Airflow's {gone[0]} exited during startup (code {gone[1]})")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(POLL_S)
    raise AirflowStartError(
        f"the Airflow API server did not answer on {url} within {timeout:.0f}s "
        "(AUDOTICS_AIRFLOW_STARTUP_TIMEOUT_SECONDS)"
    )


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to every process started and their children at once (what Ctrl-C in a terminal
    does: each shuts down its own way), then SIGKILL to whatever is left after STOP_TIMEOUT_S:
    nothing outlives the command."""
    family: list[psutil.Process] = []
    for process in processes.values():
        try:
            parent = psutil.Process(process.pid)
            family += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT_S)
    for leftover in alive:
        click.echo(f"killing process {leftover.pid}: still running", err=True)
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()
    psutil.wait_procs(alive, timeout=10)
    for process in processes.values():
        process.wait()


def supervise(components: list[tuple[str, list[str]]], env: dict[str, str], *, port: int,
              startup_timeout: float) -> None:  # fmt: skip
    """Start every (name, command), wait for the API, then run until Ctrl-C/SIGTERM or until
    one of them exits; everything started is stopped on the way out, whatever the reason."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in components:
            processes[name] = subprocess.Popen(command, env=env)
        _wait_for_api(processes, port, startup_timeout)
        click.echo(
            f"Airflow UI on http://127.0.0.1:{port} (home {env['AIRFLOW_HOME']}); Ctrl-C stops"
        )
        while (gone := _exited(processes)) is None:
            time.sleep(POLL_S)
        raise AirflowStartError(f"Airflow's {gone[0]} exited (code {gone[1]}): stopped the rest")
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping Airflow", err=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut it short
        _stop(processes)
        signal.signal(signal.SIGTERM, previous)


@click.command("airflow")
@click.option("--port", type=int, help="Port of the Airflow UI and APIs [AUDOTICS_AIRFLOW_PORT].")
@click.option(
    "--executor",
    type=click.Choice(["local", "celery"]),
    help="local: airflow standalone on SQLite; celery: PostgreSQL, Redis and Celery workers "
    "[AUDOTICS_AIRFLOW_EXECUTOR].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Celery workers [AUDOTICS_AIRFLOW_CELERY_WORKERS].",
)
def airflow_command(port: int | None, executor: str | None, workers: int | None) -> None:
    """Start Airflow locally with every DAG of the project: the UI, scheduler, DAG processor,
    triggerer and the executor's workers. Ctrl-C stops them all."""
    settings = get_settings()
    port = settings.airflow_port if port is None else port
    executor = executor or settings.airflow_executor
    if workers is not None and executor != "celery":
        raise click.UsageError("--workers applies to --executor celery only")
    if port_in_use(port):
        raise AirflowStartError(
            f"port {port} is already in use on 127.0.0.1: stop what listens there, or choose "
            "another with --port (AUDOTICS_AIRFLOW_PORT)"
        )
    env = airflow_env(settings, port=port)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    if executor == "celery":
        env.update(celery_env(settings))
        components = celery_components(workers or settings.airflow_celery_workers)
    else:
        components = [("standalone", ["airflow", "standalone"])]
    _migrate(env)
    supervise(components, env, port=port, startup_timeout=settings.airflow_startup_timeout_seconds)
