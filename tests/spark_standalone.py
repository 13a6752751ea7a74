"""A real Spark standalone cluster on 127.0.0.1 for a test: one Master and one Worker started
from pyspark's own `bin/spark-class`, each in its own process, with their work folders and logs
in a temporary folder. Import as `tests.spark_standalone`.

    with standalone_cluster() as master_url:  # spark://127.0.0.1:<port>
        ...  # a SparkSession on master_url (one SparkContext per process: a subprocess)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pyspark

from tests.support import free_port

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
READY_SECONDS = 60.0


def spark_home() -> Path:
    """pyspark's package folder: it holds `bin/spark-class` and the jars."""
    return Path(pyspark.__file__).resolve().parent


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_")}
    env.update(
        SPARK_HOME=str(spark_home()),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SPARK_LOG_DIR=str(folder / "logs"),
        SPARK_WORKER_DIR=str(folder / "work"),
        SPARK_LOCAL_DIRS=str(folder / "local"),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


@contextmanager
def _daemon(
    name: str, arguments: list[str], folder: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen]:
    """One Spark daemon in the foreground of its own process group; stopped on exit."""
    log = (folder / "logs" / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [str(spark_home() / "bin" / "spark-class"), *arguments],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        # The daemon's own process group (spark-class execs java in it): nothing else.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        log.close()


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as page:
            state = json.load(page)
    except (OSError, ValueError):
        return 0
    return sum(1 for worker in state.get("workers", ()) if worker.get("state") == "ALIVE")


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
        for path in sorted((folder / "logs").glob("*.log"))
    )


@contextmanager
def standalone_cluster(
    cores: int = 2, memory: str = "2g", ready_seconds: float = READY_SECONDS
) -> Iterator[str]:
    """Start a Master and one Worker (`cores`, `memory`) on 127.0.0.1, wait (at most
    `ready_seconds`) until the master lists the worker ALIVE, and yield the master URL. Both
    processes are always stopped."""
    with tempfile.TemporaryDirectory(prefix="spark-standalone-") as name, ExitStack() as stack:
        folder = Path(name)
        for sub in ("logs", "work", "local"):
            (folder / sub).mkdir()
        env = _environment(folder)
        port, ui_port = free_port(), free_port()
        url = f"spark://127.0.0.1:{port}"
        master = stack.enter_context(
            _daemon("master", [MASTER, "--host", "127.0.0.1", "--port", str(port),
                               "--webui-port", str(ui_port)], folder, env)
        )  # fmt: skip
        worker = stack.enter_context(
            _daemon("worker", [WORKER, "--host", "127.0.0.1", "--cores", str(cores),
                               "--memory", memory, "--webui-port", str(free_port()),
                               "--work-dir", str(folder / "work"), url], folder, env)
        )  # fmt: skip
        deadline = time.monotonic() + ready_seconds
        while _alive_workers(ui_port) < 1:
            if (
                master.poll() is not None
                or worker.poll() is not None
                or (time.monotonic() > deadline)
            ):
                raise RuntimeError(
                    f"Spark standalone cluster at {url} not ready within {ready_seconds:.0f} s "
                    f"(master exit {master.poll()}, worker exit {worker.poll()}):\n" + _logs(folder)
                )
            time.sleep(0.5)
        yield url
