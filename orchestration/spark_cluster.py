"""A Spark standalone cluster on this machine, from the pieces a cluster is deployed with: the
standalone `Master` and `Worker` daemons of pyspark's own launcher (`bin/spark-class`), bound
to 127.0.0.1, no Docker.

    audotics cluster up --workers 2       # the master on AUDOTICS_SPARK_CLUSTER_PORT
    AUDOTICS_SPARK_MASTER=spark://127.0.0.1:7077 audotics run
    audotics cluster status --json        # master_url, ui_url, the master's /json/ state
    audotics cluster down

The daemons run detached, each in its own session; their pids, ports, logs and work folders
live under `<state>/spark-cluster`, so `down` (or a later `up`) finds them from any shell.
`down` stops them and removes the folder: nothing is left behind. The master accepts any
application that reaches its port: it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from audotics.errors import AudoticsError
from audotics.services import free_port, port_in_use
from audotics.settings import Settings, get_settings

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"
READY_SECONDS = 90.0
STOP_SECONDS = 20.0


class ClusterError(AudoticsError):
    """The local Spark cluster cannot start, or is not running when it should be."""


@dataclass(frozen=True)
class Cluster:
    """A running local cluster, as recorded in its state file."""

    master_url: str  # spark://127.0.0.1:<port>
    ui_url: str  # the master's web UI; `<ui_url>/json/` is its state as JSON
    pids: list[int]  # the daemons' process (and session) ids, master first

    def state(self) -> dict:
        """The master's own status page (`/json/`): workers, applications."""
        try:
            with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as page:
                return json.load(page)
        except (OSError, ValueError) as exc:
            raise ClusterError(
                f"the Spark master UI at {self.ui_url} does not answer: {exc}"
            ) from exc

    def alive_workers(self) -> int:
        return sum(1 for worker in self.state().get("workers", ()) if worker["state"] == "ALIVE")


def spark_home() -> Path:
    """pyspark's package folder, which holds `bin/spark-class` and the jars (found without
    importing pyspark)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ClusterError("pyspark is not installed in this environment (`make setup`)")
    return Path(spec.origin).resolve().parent


def cluster_folder(settings: Settings) -> Path:
    return settings.state_dir / "spark-cluster"


def _state_file(settings: Settings) -> Path:
    return cluster_folder(settings) / "cluster.json"


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_")}
    env.update(
        SPARK_HOME=str(spark_home()),
        # Executors run the project's Python, whoever starts them.
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOG_DIR=str(folder / "logs"),
        SPARK_WORKER_DIR=str(folder / "work"),
        SPARK_LOCAL_DIRS=str(folder / "local"),
        SPARK_LOCAL_IP=HOST,
    )
    return env


def _start(name: str, arguments: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start one daemon detached, in a session of its own (spark-class execs java in it)."""
    with (folder / "logs" / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *arguments],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _alive(pid: int) -> bool:
    """Whether `pid` is still one of our Spark daemons (not a reused pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and b"org.apache.spark.deploy" in command


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
        for path in sorted((folder / "logs").glob("*.log"))
    )


def running(settings: Settings) -> Cluster | None:
    """The cluster the state folder records, if its master is still running."""
    try:
        cluster = Cluster(**json.loads(_state_file(settings).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return cluster if cluster.pids and _alive(cluster.pids[0]) else None


def up(
    settings: Settings,
    workers: int = 2,
    cores: int = 1,
    memory: str = "2g",
    ready_seconds: float = READY_SECONDS,
) -> Cluster:
    """Start a master and `workers` workers (each `cores` cores, `memory`), and wait until the
    master lists every worker ALIVE. A cluster already running is kept (and returned) if it
    has the workers asked for; anything that fails to start is stopped again."""
    if workers < 1:
        raise ClusterError(f"--workers must be at least 1, not {workers}")
    current = running(settings)
    if current:
        if current.alive_workers() != workers:
            raise ClusterError(
                f"a cluster with {current.alive_workers()} workers is already running at "
                f"{current.master_url}: `audotics cluster down` first"
            )
        return current
    down(settings)  # what a crashed cluster left
    port, ui_port = settings.spark_cluster_port, settings.spark_cluster_ui_port
    for name, taken in (("SPARK_CLUSTER_PORT", port), ("SPARK_CLUSTER_UI_PORT", ui_port)):
        if port_in_use(taken):
            raise ClusterError(f"port {taken} (AUDOTICS_{name}) is in use: choose another one")
    folder = cluster_folder(settings)
    for sub in ("logs", "work", "local"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    env = _environment(folder)
    master_url = f"spark://{HOST}:{port}"
    daemons = {
        "master": _start("master", [MASTER, "--host", HOST, "--port", str(port),
                                    "--webui-port", str(ui_port)], folder, env),
    }  # fmt: skip
    for number in range(1, workers + 1):
        daemons[f"worker-{number}"] = _start(
            f"worker-{number}", [WORKER, "--host", HOST, "--cores", str(cores), "--memory", memory,
                                 "--webui-port", str(free_port()),
                                 "--work-dir", str(folder / "work"), master_url],
            folder, env,
        )  # fmt: skip
    pids = [daemon.pid for daemon in daemons.values()]
    cluster = Cluster(master_url, f"http://{HOST}:{ui_port}", pids=pids)
    _state_file(settings).write_text(json.dumps(asdict(cluster)))
    deadline = time.monotonic() + ready_seconds
    while True:
        with contextlib.suppress(ClusterError):
            if cluster.alive_workers() == workers:
                return cluster
        exited = {
            name: daemon.poll() for name, daemon in daemons.items() if daemon.poll() is not None
        }
        if exited or time.monotonic() > deadline:
            logs = _logs(folder)
            down(settings)
            raise ClusterError(
                f"the Spark cluster at {master_url} did not list {workers} workers ALIVE "
                f"within {ready_seconds:.0f} s (exited: {exited or 'none'}); its logs:\n{logs}"
            )
        time.sleep(0.5)


def down(settings: Settings) -> None:
    """Stop every daemon the state folder records (SIGTERM, then SIGKILL) and remove it."""
    folder = cluster_folder(settings)
    try:
        pids = json.loads(_state_file(settings).read_text())["pids"]
    except (OSError, ValueError, KeyError):
        pids = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in filter(_alive, pids):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + STOP_SECONDS
        while any(map(_alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
    if any(map(_alive, pids)):
        raise ClusterError(f"Spark daemons {[p for p in pids if _alive(p)]} did not stop")
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def local_cluster(settings: Settings, workers: int = 2, **options: object) -> Iterator[Cluster]:
    """A cluster for the length of a block (tests, benchmarks): always stopped after."""
    try:
        yield up(settings, workers, **options)
    finally:
        down(settings)


# --- the `audotics cluster` commands -------------------------------------------------------------


@click.group("cluster")
def cluster_group() -> None:
    """A local Spark standalone cluster (master and workers on 127.0.0.1)."""


@cluster_group.command("up")
@click.option("--workers", default=2, show_default=True, help="Worker daemons to start.")
@click.option("--cores", default=1, show_default=True, help="Cores each worker offers.")
@click.option("--memory", default="2g", show_default=True, help="Memory each worker offers.")
def cluster_up(workers: int, cores: int, memory: str) -> None:
    """Start the master and workers, and wait until every worker is ALIVE."""
    cluster = up(get_settings(), workers, cores, memory)
    click.echo(f"Spark cluster up: {cluster.master_url} (UI {cluster.ui_url}), {workers} workers")
    click.echo(f"run a job on it: AUDOTICS_SPARK_MASTER={cluster.master_url} audotics run")


@cluster_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def cluster_status(as_json: bool) -> None:
    """The master URL, UI URL, workers and applications. Exit 1 if no cluster is running."""
    cluster = running(get_settings())
    if cluster is None:
        click.echo("no Spark cluster running (`audotics cluster up`)", err=True)
        sys.exit(1)
    status = {"master_url": cluster.master_url, "ui_url": cluster.ui_url, **cluster.state()}
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    click.echo(f"master {status['master_url']} ({status.get('status')}), UI {status['ui_url']}")
    for worker in status.get("workers", ()):
        click.echo(f"  worker {worker['id']}: {worker['state']}, {worker['cores']} cores")
    click.echo(
        f"  applications: {len(status.get('activeapps', ()))} running, "
        f"{len(status.get('completedapps', ()))} completed"
    )


@cluster_group.command("down")
def cluster_down() -> None:
    """Stop the master and workers, and remove their folder."""
    down(get_settings())
    click.echo("Spark cluster down")
