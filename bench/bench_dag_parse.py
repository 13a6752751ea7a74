"""DAG parse benchmark: the import time of each file in `dags/` beside a bare
`import airflow.sdk, cosmos`, as the DAG processor pays it on every parse.

    .venv/bin/python bench/bench_dag_parse.py [--runs 5]

Each figure is the median over --runs fresh interpreters (no warm module cache) of the time
from before `import airflow.sdk, cosmos` to after the DAG file has run (the bare figure stops
after the two imports), with PostgreSQL and Redis unreachable and an invalid setting in the
environment, as in tests/test_dag_integrity.py: a file that needed either would fail here.
Goal: each file within 1.5 s of the bare import. The load average is printed: on a shared
machine, other work slows every figure alike, the differences less so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.5
TIMED = """
import runpy, sys, time
started = time.perf_counter()
import airflow.sdk, cosmos
if len(sys.argv) > 1:
    runpy.run_path(sys.argv[1], run_name="dag_file")
print(time.perf_counter() - started)
"""


def seconds(env: dict[str, str], *dag_file: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", TIMED, *dag_file], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"{dag_file or 'bare'} failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per figure")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bench-dag-parse-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDOTICS_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=f"{home}/airflow",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        AUDOTICS_HOME=f"{home}/state",
        AUDOTICS_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        AUDOTICS_REDIS_URL="redis://127.0.0.1:1/0",
        AUDOTICS_WORLD_USERS="abc",  # any get_settings() at parse time fails the file
    )
    seconds(env)  # the first interpreter writes AIRFLOW_HOME's config: not timed
    bare = statistics.median(seconds(env) for _ in range(args.runs))
    print(f"load average {os.getloadavg()[0]:.2f}; median of {args.runs} fresh interpreters")
    print(f"{'file':<34} {'import s':>9} {'bare s':>7} {'ratio':>6} {'extra s':>8}  goal")
    print(f"{'import airflow.sdk, cosmos':<34} {bare:>9.2f} {bare:>7.2f} {1:>6.2f} {0:>8.2f}")
    for path in sorted((REPO / "dags").glob("*.py")):
        median = statistics.median(seconds(env, str(path)) for _ in range(args.runs))
        verdict = "ok" if median - bare <= GOAL_S else f"over {GOAL_S} s"
        print(
            f"{'dags/' + path.name:<34} {median:>9.2f} {bare:>7.2f} {median / bare:>6.2f} "
            f"{median - bare:>8.2f}  {verdict}"
        )


if __name__ == "__main__":
    main()
