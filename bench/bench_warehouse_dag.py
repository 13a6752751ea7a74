"""Warehouse DAG wall time beside plain `dbt build` (the anchor), on one generated world.

Runs `audotics run` once on a small generated world and an embedded PostgreSQL (untimed: the
lake, the registry and recommendations the warehouse reads, and a first load and build), then
times, in turn, each in a fresh process:
- the anchor: `dbt build` of the project against the world's warehouse (dbt's own CLI, its
  partial parse warm after the first run);
- `airflow dags test warehouse` of dags/warehouse_dag.py (the load, the freshness checks and the
  dbt build with every model and test, and the tasks that report them), on a migrated SQLite
  Airflow home;
- with --compare-dag, the same for another form of the DAG file, e.g. the previous one:
  `git show 428bd20:dags/warehouse_dag.py > /tmp/old/warehouse_dag.py`.
Prints the median over --repeat runs and its ratio to the anchor. Goal: the DAG within 2x.

    .venv/bin/python bench/bench_warehouse_dag.py [--repeat 3] [--compare-dag FILE]

The DAG's figure includes what plain dbt does not do: Airflow's start (parse, metadata run),
the load task (unchanged tables are skipped) and one task per node. The load average is
printed: on a shared machine other work slows every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from audotics import services
from audotics.services import free_port
from audotics.settings import Settings
from orchestration.airflow_local import airflow_env
from warehouse.dbt import DBT_PROJECT_DIR, dbt_env

REPO = Path(__file__).resolve().parents[1]
GOAL = 2.0
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Form:
    name: str
    argv: list[str]
    env: dict[str, str]
    success: str = ""  # what a successful run prints (`dags test` exits 0 on a failed run)


def platform_env(settings: Settings, airflow_home: Path) -> dict[str, str]:
    """The world's settings for every subprocess: the CLI (which generates the world), dbt's
    profile and Airflow."""
    # airflow_env starts from this process's environment: no other platform's settings.
    env = {k: v for k, v in airflow_env(settings).items() if not k.startswith("AUDOTICS_")}
    env.update(
        AUDOTICS_HOME=str(settings.state_dir),
        AUDOTICS_POSTGRES_PORT=str(settings.postgres_port),
        AUDOTICS_REDIS_PORT=str(settings.redis_port),
        AUDOTICS_SPARK_MASTER=settings.spark_master,
        AIRFLOW_HOME=str(airflow_home),
        DBT_PROFILES_DIR=str(DBT_PROJECT_DIR),
    )
    for name in ("users", "tracks", "artists", "days", "events_per_day"):
        env[f"AUDOTICS_WORLD_{name.upper()}"] = str(getattr(settings, f"world_{name}"))
    return {**env, **dbt_env(settings)}


def dag_form(name: str, dag_file: Path, day: str, env: dict[str, str]) -> Form:
    dag_file = dag_file.resolve()
    argv = [str(BIN / "airflow"), "dags", "test", "warehouse", day, "-f", str(dag_file)]
    # `-f` must lie in the DAGs folder: each form is read from its own.
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dag_file.parent)}
    return Form(name, argv, env, success="state=success")


def timed(form: Form) -> float:
    """Wall seconds of one run, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run(form.argv, env=form.env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    if done.returncode != 0 or form.success not in output:
        raise SystemExit(f"{form.name} failed ({done.returncode}):\n{output[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--events-per-day", type=int, default=3_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument(
        "--compare-dag", type=Path, help="another warehouse DAG file to time the same way"
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="audotics-bench-warehouse-"))
    settings = Settings(
        home=home,
        postgres_port=free_port(),
        redis_port=free_port(),
        spark_master="local[2]",
        world_users=args.users,
        world_tracks=args.users * 2,
        world_artists=max(20, args.users // 8),
        world_days=args.days,
        world_events_per_day=args.events_per_day,
        _env_file=None,
    )
    try:
        services.up(settings)
        env = platform_env(settings, home / "airflow")
        for setup in (["audotics", "run"], ["airflow", "db", "migrate"]):
            print(f"setup: {' '.join(setup)}", file=sys.stderr)
            done = subprocess.run([str(BIN / setup[0]), *setup[1:]], env=env, text=True,
                                  capture_output=True)  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(
                    f"{' '.join(setup)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
                )

        day = settings.world_start_date.isoformat()  # any day: the load is not date-bound
        target = home / "anchor"
        forms = [
            Form("plain `dbt build` (anchor)",
                 [str(BIN / "dbt"), "build", "--project-dir", str(DBT_PROJECT_DIR),
                  "--target-path", str(target / "target"), "--log-path", str(target / "logs")],
                 env),
            dag_form("`airflow dags test warehouse` (dags/warehouse_dag.py)",
                     REPO / "dags" / "warehouse_dag.py", day, env),
        ]  # fmt: skip
        if args.compare_dag:
            forms.append(dag_form(f"`airflow dags test warehouse` ({args.compare_dag})",
                                  args.compare_dag, day, env))  # fmt: skip
        results: dict[str, list[float]] = {form.name: [] for form in forms}
        for attempt in range(args.repeat):
            for form in forms:  # interleaved: a busy spell slows every form alike
                results[form.name].append(timed(form))
                print(f"run {attempt + 1}: {form.name}: {results[form.name][-1]:.1f}s",
                      file=sys.stderr)  # fmt: skip

        anchor = statistics.median(results[forms[0].name])
        print(f"\nload average {os.getloadavg()[0]:.2f}; median of {args.repeat} runs; "
              f"{args.users} users, {args.days} days x {args.events_per_day:,} events")  # fmt: skip
        print("| form | median s | vs anchor | goal |")
        print("|---|---:|---:|---|")
        for name, times in results.items():
            median = statistics.median(times)
            verdict = "ok" if median <= GOAL * anchor else f"over {GOAL:g}x"
            print(f"| {name} | {median:.1f} | {median / anchor:.2f}x | {verdict} |")
    finally:
        services.down(settings)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
