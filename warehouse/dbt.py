"""Running the dbt project in `dbt/` (staging, intermediate, marts) against the warehouse of the
settings.

dbt finds its connection in the committed `dbt/profiles.yml`, which reads `DBT_AUDOTICS_*`
environment variables with the embedded server's defaults; `dbt_env()` derives them from the
settings, and `run_dbt()` / the Airflow DAG pass them on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url

from audotics.progress import progress
from audotics.settings import Settings
from warehouse.errors import WarehouseError

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
DBT_PROFILE, DBT_TARGET = "audotics", "warehouse"
NODE_DONE = re.compile(r"\b(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP)\b")
_ARTIFACTS = ("run_results.json", "sources.json")  # what a command leaves (sources: freshness)


def dbt_env(settings: Settings) -> dict[str, str]:
    """The variables `dbt/profiles.yml` reads, for the warehouse of these settings."""
    url = make_url(settings.postgres_url)
    env = {
        "DBT_AUDOTICS_HOST": url.host or "127.0.0.1",
        "DBT_AUDOTICS_PORT": str(url.port or 5432),
        "DBT_AUDOTICS_USER": url.username or "",
        "DBT_AUDOTICS_DBNAME": url.database or "",
    }
    if url.password:  # dbt scrubs DBT_ENV_SECRET_* values from its logs
        env["DBT_ENV_SECRET_AUDOTICS_PASSWORD"] = url.password
    return env


def dbt_target_dir(settings: Settings) -> Path:
    """Where run_dbt keeps dbt's artifacts (manifest, run results, docs): under the state folder,
    so each platform instance has its own."""
    return settings.state_dir / "dbt" / "target"


def dbt_executable() -> str:
    """The dbt next to the running Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


@dataclass(frozen=True)
class DbtInvocation:
    args: tuple[str, ...]
    returncode: int
    output: str
    results: tuple[dict[str, Any], ...]  # run_results.json (or sources.json for freshness)

    def by_name(self) -> dict[str, dict[str, Any]]:
        """Results keyed by node name (`fct_listening_events`, `source:lake.events`, ...)."""
        named = {}
        for result in self.results:
            unique_id = result["unique_id"]
            parts = unique_id.split(".")
            name = f"source:{parts[-2]}.{parts[-1]}" if parts[0] == "source" else parts[-1]
            named[name] = result
        return named


def _read_results(target: Path) -> tuple[dict[str, Any], ...]:
    for artifact in _ARTIFACTS:
        path = target / artifact
        if path.exists():
            return tuple(json.loads(path.read_text())["results"])
    return ()


def _failures(results: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{r['unique_id']} {r['status']}: {(r.get('message') or '').strip()}"
        for r in results
        if r["status"] in ("error", "fail", "runtime error")
    ]


def run_dbt(
    settings: Settings, args: Sequence[str], *, echo: bool = False, check: bool = True
) -> DbtInvocation:
    """Run the venv's dbt on the project against the settings' warehouse.

    Artifacts go to `dbt_target_dir(settings)`. With `check`, a failing command raises
    WarehouseError naming the failed nodes; `echo` streams dbt's output as it runs.
    """
    target = dbt_target_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    for artifact in _ARTIFACTS:  # a command that fails early must not report an older run
        (target / artifact).unlink(missing_ok=True)
    env = {
        **os.environ,
        **dbt_env(settings),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target.parent / "logs"),
    }
    command = [dbt_executable(), *args]
    lines = []
    with (
        progress(f"dbt {args[0]}", unit="node") as bar,
        subprocess.Popen(
            command,
            cwd=DBT_PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            log.debug("dbt: %s", line.rstrip())
            if echo:
                click.echo(line, nl=False)
            if done := NODE_DONE.search(line):  # "3 of 45 OK created sql view model ..."
                bar.total, bar.n = int(done[2]), int(done[1])
                bar.refresh()
    invocation = DbtInvocation(
        tuple(args), process.returncode, "".join(lines), _read_results(target)
    )
    if check and invocation.returncode != 0:
        failures = _failures(invocation.results) or [invocation.output[-3000:]]
        raise WarehouseError(
            f"`dbt {' '.join(args)}` failed (exit {invocation.returncode}): " + "; ".join(failures)
        )
    return invocation
