"""Ingestion throughput and peak memory beside the embedded-engine anchor, on the same files.

Generates a world of N events over --days landing days (real embedded PostgreSQL for the
catalog), then times, each in a fresh process on the same landing files:
- the DuckDB anchor: `read_ndjson` with explicit columns and `ignore_errors`, rows with a null
  key dropped, de-duplicated on event_id, written as Parquet partitioned by event date;
- Spark `local[*]` doing the same (`spark.read.json` with the schema, PERMISSIVE);
- `audotics ingest` over all days (catalog extract, bronze, rules, quarantine, dedup, silver,
  gates, reconciliation, Data Docs), from an empty lake each time, with the embedded engine
  and (with --spark-engine) with AUDOTICS_INGEST_ENGINE=spark.
Prints medians over --repeat runs, the throughput ratio to the anchor, and each process's peak
RSS (from the kernel's accounting of the finished process, `wait4`). A pipeline is a `Pipeline`
in `pipelines()`: another engine is one more entry.

    .venv/bin/python bench/bench_ingest.py                 # 1M events over 4 days
    .venv/bin/python bench/bench_ingest.py --events 10000000 --repeat 1
    .venv/bin/python bench/bench_ingest.py --events 2000000 --days 1 --repeat 1  # one 2M day
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
from dataclasses import dataclass, field
from pathlib import Path

from audotics import services
from audotics.services import free_port
from audotics.settings import Settings
from demo.world.generate import generate_world
from ingestion.landing import landing_days

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


SPARK_ANCHOR = """
import sys
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[*]").config("spark.driver.memory", "4g")
    .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
schema = ("event_id STRING, event_type STRING, user_id STRING, track_id STRING, ts TIMESTAMP, "
    "ms_played BIGINT, context STRING, playlist_id STRING, model_version STRING, device STRING, "
    "country STRING")
keys = ["event_id", "event_type", "user_id", "track_id", "ts", "ms_played"]
(spark.read.schema(schema).option("mode", "PERMISSIVE").json(sys.argv[1]).dropna(subset=keys)
    .dropDuplicates(["event_id"]).withColumn("event_date", F.to_date("ts"))
    .write.mode("overwrite").partitionBy("event_date").parquet(sys.argv[2]))
"""


@dataclass(frozen=True)
class Pipeline:
    name: str
    command: Callable[[Settings, Path], list[str]]  # (settings, scratch folder) -> argv
    before: Callable[[Settings], None] = lambda settings: None  # untimed reset before a run
    env: dict[str, str] = field(default_factory=dict)  # on top of the platform's settings


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


def _spark_anchor(settings: Settings, scratch: Path) -> list[str]:
    files = Path(settings.landing_root) / "events" / "date=*" / "*.jsonl.gz"
    return [sys.executable, "-c", SPARK_ANCHOR, str(files), str(scratch / "spark-anchor")]


def pipelines(spark_engine: bool) -> list[Pipeline]:
    """What is timed; the anchor comes first (the ratios are to it)."""
    timed = [
        Pipeline("DuckDB anchor (read_ndjson, dedup, Parquet)", _anchor),
        Pipeline("Spark local[*] (read.json, dedup, Parquet)", _spark_anchor),
        Pipeline("audotics ingest, duckdb engine (all steps)", _ingest, before=_empty_lake,
                 env={"AUDOTICS_INGEST_ENGINE": "duckdb"}),
    ]  # fmt: skip
    if spark_engine:
        timed.append(
            Pipeline("audotics ingest, spark engine (all steps)", _ingest, before=_empty_lake,
                     env={"AUDOTICS_INGEST_ENGINE": "spark"})
        )  # fmt: skip
    return timed


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
    parser.add_argument("--days", type=int, default=4, help="landing days the events span")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--spark-engine", action="store_true", help="also time the ingest on the Spark engine"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    home = Path(tempfile.mkdtemp(prefix="audotics-bench-ingest-"))
    settings = Settings(
        home=home,
        postgres_port=free_port(),
        redis_port=free_port(),
        world_days=args.days,
        world_events_per_day=args.events // args.days,
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
        # Untimed: byte-compile the imports once (GX's too, loaded by the validation process).
        warm = "import ingestion.days, orchestration.cli, great_expectations"
        run_measured([sys.executable, "-c", warm], env)
        results: dict[str, tuple[list[float], list[int]]] = {}
        timed = pipelines(args.spark_engine)
        for attempt in range(args.repeat):
            for pipeline in timed:
                pipeline.before(settings)
                argv = pipeline.command(settings, scratch)
                seconds, rss = run_measured(argv, {**env, **pipeline.env})
                times, peaks = results.setdefault(pipeline.name, ([], []))
                times.append(seconds)
                peaks.append(rss)
                print(f"run {attempt + 1}: {pipeline.name}: {seconds:.1f}s, "
                      f"{rss / 2**20:,.0f} MiB", file=sys.stderr)  # fmt: skip

        anchor = statistics.median(results[timed[0].name][0])
        print()
        print("| pipeline | events (lines) | median s | events/s | vs anchor | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, (times, peaks) in results.items():
            median = statistics.median(times)
            print(f"| {name} | {lines:,} | {median:.1f} | {lines / median:,.0f} | "
                  f"{anchor / median:.2f}x | {max(peaks) / 2**20:,.0f} |")  # fmt: skip
        print(f"\nrepeats: {args.repeat}; {args.days} landing days")
    finally:
        services.down(settings)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
