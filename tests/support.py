"""What tests share besides fixtures: the repository root, settings of an isolated platform
instance, and the environment of a subprocess that targets one. Import as `tests.support`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from audotics import lake
from audotics.lake.tables import Table
from audotics.services import free_port
from audotics.settings import Settings

REPO = Path(__file__).resolve().parents[1]
__all__ = ["REPO", "environment_for", "free_port", "isolated_settings", "python_json"]


def isolated_settings(home: Path, **overrides: object) -> Settings:
    """Settings of an isolated platform instance: its own state folder and free ports."""
    values: dict[str, object] = dict(
        home=home,
        postgres_port=free_port(),
        redis_port=free_port(),
        spark_master="local[2]",
        spark_driver_memory="2g",
        spark_shuffle_partitions=2,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def environment_for(settings: Settings) -> dict[str, str]:
    """Environment for a subprocess (the CLI, `airflow dags test`) that targets `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDOTICS_")}
    env.update(
        # Absolute: the subprocess finds the state folder, and its credentials, from any cwd.
        AUDOTICS_HOME=str(settings.state_dir),
        AUDOTICS_SPARK_MASTER=settings.spark_master,
        AUDOTICS_SPARK_DRIVER_MEMORY=settings.spark_driver_memory,
        AUDOTICS_SPARK_SHUFFLE_PARTITIONS=str(settings.spark_shuffle_partitions),
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
    )
    for name in ("database_url", "redis_url"):
        if getattr(settings, name):
            env[f"AUDOTICS_{name.upper()}"] = getattr(settings, name)
    env.setdefault("AUDOTICS_POSTGRES_PORT", str(settings.postgres_port))
    env.setdefault("AUDOTICS_REDIS_PORT", str(settings.redis_port))
    return env


def python_json(script: str, *args: str, env: dict[str, str], timeout: float = 900) -> object:
    """Run `script` in a fresh interpreter (what Airflow's parser or a task would see) and
    return the JSON it prints last; a failing run fails the test with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# What two runs of the same world differ in: when and under which run id a row was processed.
PROCESSING_COLUMNS = {"run_id", "ingested_at", "quarantined_at"}


def comparable_rows(settings: Settings, table: Table) -> list[dict]:
    """A lake table's rows without their processing columns, in a stable order, to compare two
    runs of the same world. Floats to 12 significant digits: a sum over other partitions adds
    in another order (its last bits)."""
    rows = lake.read_arrow(settings, table)
    rows = rows.drop_columns([name for name in rows.column_names if name in PROCESSING_COLUMNS])
    return sorted(
        (
            {k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in row.items()}
            for row in rows.to_pylist()
        ),
        key=repr,
    )


def stderr_on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 300) -> bytes:
    """What a command draws on stderr when it is a terminal, 100 columns wide (stdout dropped);
    the command must succeed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=terminal
    ) as process:  # fmt: skip
        os.close(terminal)
        drawn = b""
        while chunk := _read_terminal(controller):
            drawn += chunk
        assert process.wait(timeout=timeout) == 0, drawn[-2000:]
    os.close(controller)
    return drawn


def _read_terminal(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other end closed
        return b""
