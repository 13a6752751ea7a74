"""Airflow on this machine: its home under the state folder, the project's DAGs, SQLite
metadata, and `airflow standalone` for the UI (`make airflow`). On a real deployment none of
this is used: Airflow's own configuration points at the same `dags/` folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from audotics.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]


def airflow_env(settings: Settings, *, port: int = 8080) -> dict[str, str]:
    """The environment every local Airflow process gets (CLI, standalone, `dags test`)."""
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(settings.state_dir / "airflow"))
    # Tasks find the state folder (and the services' credentials in it) wherever they run.
    env.setdefault("AUDOTICS_HOME", str(settings.state_dir))
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # A laptop UI: everyone who can reach localhost is admin. Never set on a shared server.
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",  # an offline machine
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",  # standalone spawns `airflow`
    )
    # JSON form: a URI cannot carry `local[*]` (the brackets read as an IPv6 host).
    env.setdefault(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps({"conn_type": "spark", "host": settings.spark_master}),
    )
    return env


@click.command("airflow")
@click.option("--port", default=8080, show_default=True, help="Port of the Airflow UI and API.")
def airflow_command(port: int) -> None:
    """Start the Airflow UI locally (airflow standalone) with every DAG of the project."""
    settings = get_settings()
    env = airflow_env(settings, port=port)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    click.echo(f"Airflow UI on http://127.0.0.1:{port} (home {env['AIRFLOW_HOME']}); Ctrl-C stops")
    os.execvpe("airflow", ["airflow", "standalone"], env)
