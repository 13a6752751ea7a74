"""Ingestion throughput beside the engine's limit.

Generates a world of N events (real embedded PostgreSQL for the catalog), then times the whole
ingestion (catalog extract, bronze, GX conformance, quarantine, dedup, silver, reconciliation)
and, in the same run, a bare `write_deltalake` of the resulting silver rows as one Arrow table:
the most the Delta engine can do with these rows. Prints medians over --repeat runs.

    .venv/bin/python bench/bench_ingest.py                 # 1M events
    .venv/bin/python bench/bench_ingest.py --events 10000000
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from deltalake import write_deltalake

from audotics import lake, services
from audotics.lake import tables
from audotics.services import free_port
from audotics.settings import Settings
from demo.world.generate import generate_world
from ingestion.days import ingest
from ingestion.landing import landing_days

DAYS = 4


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
        print(f"generated {sum(manifest.files.values()):,} lines in "
              f"{time.perf_counter() - started:.1f}s", file=sys.stderr)  # fmt: skip
        lines = sum(manifest.files.values())
        days = landing_days(settings)

        # The bare write partitions as silver/events does, so the two write the same files.
        partition_by = list(tables.SILVER_EVENTS.partition_by)
        ingest_s, bare_s = [], []
        for attempt in range(args.repeat):
            started = time.perf_counter()
            ingest(settings, days, run_id=f"bench-{attempt}")
            ingest_s.append(time.perf_counter() - started)

            rows = lake.read_arrow(settings, tables.SILVER_EVENTS)
            target = home / f"bare-{attempt}"
            started = time.perf_counter()
            write_deltalake(str(target), rows, partition_by=partition_by, mode="overwrite")
            bare_s.append(time.perf_counter() - started)
            shutil.rmtree(target)
            print(f"run {attempt + 1}: ingest {ingest_s[-1]:.1f}s, bare write {bare_s[-1]:.2f}s",
                  file=sys.stderr)  # fmt: skip

        ingest_median, bare_median = statistics.median(ingest_s), statistics.median(bare_s)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print()
        print("| events (lines) | step | median s | events/s | vs bare write_deltalake |")
        print("|---:|---|---:|---:|---:|")
        print(f"| {lines:,} | audotics ingest (all steps) | {ingest_median:.1f} | "
              f"{lines / ingest_median:,.0f} | {bare_median / ingest_median:.2f}x |")  # fmt: skip
        print(f"| {rows.num_rows:,} silver rows | bare write_deltalake (Arrow) | "
              f"{bare_median:.2f} | {rows.num_rows / bare_median:,.0f} | 1.00x |")  # fmt: skip
        print(f"\npeak RSS of this process: {peak_mib:,.0f} MiB; repeats: {args.repeat}")
    finally:
        services.down(settings)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
