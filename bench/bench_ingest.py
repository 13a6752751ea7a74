"""Ingestion throughput and peak memory beside the embedded-engine anchor, on the same files.

Generates a world of N events over 4 landing days (real embedded PostgreSQL for the catalog),
then times, each in a fresh process on the same landing files:
- `audotics ingest` over all days (catalog extract, bronze, rules, quarantine, dedup, silver,
  gates, reconciliation, Data Docs), from an empty lake each time;
- the DuckDB anchor: `read_ndjson` with explicit columns and `ignore_errors`, rows with a null
  key dropped, de-duplicated on event_id, written as Parquet partitioned by event date.
Prints medians over --repeat runs, the throughput ratio to the anchor, and each process's peak
RSS (from the kernel's accounting of the finished process, `wait4`). A pipeline is a `Pipeline`
in `pipelines()`: another engine is one more entry.

    .venv/bin/python bench/bench_ingest.py                 # 1M events
    .venv/bin/python bench/bench_ingest.py --events 10000000 --repeat 1
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audotics import services
from audotics.services import free_port
from audotics.settings import Settings
from demo.world.generate import generate_world
from ingestion.landing import landing_days

DAYS = 4
ANCHOR_SQL = """
SET TimeZone = 'UTC';
COPY (
    SELECT *, CAST(ts AS DATE) AS event_date
    FROM read_ndjson('{files}', ignore_errors = true, columns = {{
        event_id: 'VARCHAR', event_type: 'VARCHAR', user_id: 'VARCHAR', track_id: 'VARCHAR',
        ts: 'TIMESTAMPTZ', ms_played: 'BIGINT', context: 'VARCHAR', playlist_id: 'VARCHAR',
        model_version: 'VARCHAR', device: 'VARCHAR', country: 'VARCHAR'}})
    WHERE event_id IS NOT NULL AND event_type IS NOT NULL AND user_id IS NOT NULL
        AND track_id IS NOT NULL AND ts IS NOT NULL AND ms_played IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY event_id) = 1
) TO '{target}' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE);
"""


@dataclass(frozen=True)
class Pipeline:
    name: str
    command: Callable[[Settings, Path], list[str]]  # (settings, scratch folder) -> argv
    before: Callable[[Settings], None] = lambda settings: None  # untimed reset before a run


def _empty_lake(settings: Settings) -> None:
    for folder in (Path(settings.lake_root), settings.state_dir / "gx"):
        shutil.rmtree(folder, ignore_errors=True)


def _ingest(settings: Settings, _scratch: Path) -> list[str]:
    days = landing_days(settings)
    return ["audotics", "ingest", "--date", str(days[0]), "--to", str(days[-1])]


def _anchor(settings: Settings, scratch: Path) -> list[str]:
    files = Path(settings.landing_root) / "events" / "date=*" / "*.jsonl.gz"
    sql = ANCHOR_SQL.format(files=files, target=scratch / "anchor")
    return [sys.executable, "-c", f"import duckdb; duckdb.connect().execute({sql!r}).fetchall()"]


def pipelines() -> list[Pipeline]:
    """What is timed; the anchor comes first (the ratios are to it)."""
    return [
        Pipeline("DuckDB anchor (read_ndjson, dedup, Parquet)", _anchor),
        Pipeline("audotics ingest (all steps)", _ingest, before=_empty_lake),
    ]


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process, which must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({process.returncode}):\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss * 1024  # Linux: KiB


def environment(settings: Settings) -> dict[str, str]:
    """The platform's settings, and byte-compiled imports as an installed venv has them: with
    PYTHONDONTWRITEBYTECODE each run would compile its ~2,500 modules (GX's) from source."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUDOTICS_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        AUDOTICS_HOME=str(settings.home),
        AUDOTICS_POSTGRES_PORT=str(settings.postgres_port),
        AUDOTICS_REDIS_PORT=str(settings.redis_port),
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONPYCACHEPREFIX=str(settings.state_dir / "pycache"),
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    home = Path(tempfile.mkdtemp(prefix="audotics-bench-ingest-"))
    settings = Settings(
        home=home,
        postgres_port=free_port(),
        redis_port=free_port(),
        world_days=DAYS,
        world_events_per_day=args.events // DAYS,
        world_users=max(2_000, args.events // 500),
        world_tracks=max(5_000, args.events // 200),
        world_artists=max(300, args.events // 2_000),
        _env_file=None,
    )
    try:
        services.up(settings)
        started = time.perf_counter()
        manifest = generate_world(settings, progress=True)
        lines = sum(manifest.files.values())
        print(f"generated {lines:,} lines in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        env, scratch = environment(settings), home / "scratch"
        scratch.mkdir()
        run_measured([sys.executable, "-c", "import ingestion.days, orchestration.cli"], env)
        results: dict[str, tuple[list[float], list[int]]] = {}
        for attempt in range(args.repeat):
            for pipeline in pipelines():
                pipeline.before(settings)
                seconds, rss = run_measured(pipeline.command(settings, scratch), env)
                times, peaks = results.setdefault(pipeline.name, ([], []))
                times.append(seconds)
                peaks.append(rss)
                print(f"run {attempt + 1}: {pipeline.name}: {seconds:.1f}s, "
                      f"{rss / 2**20:,.0f} MiB", file=sys.stderr)  # fmt: skip

        anchor = statistics.median(results[pipelines()[0].name][0])
        print()
        print("| pipeline | events (lines) | median s | events/s | vs anchor | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, (times, peaks) in results.items():
            median = statistics.median(times)
            print(f"| {name} | {lines:,} | {median:.1f} | {lines / median:,.0f} | "
                  f"{anchor / median:.2f}x | {max(peaks) / 2**20:,.0f} |")  # fmt: skip
        print(f"\nrepeats: {args.repeat}; {DAYS} landing days")
    finally:
        services.down(settings)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
