"""World generation throughput and memory beside the write limit.

For each size, generates a whole world (catalog into a real embedded PostgreSQL, then the
hourly gzip event files) in a fresh process, and reports its events/s and peak RSS. Beside it,
the physical reference measured in the same run: gzip-compressing the same number of bytes of
pre-built JSON lines (taken from the generated files) at the generator's level on one core,
which is the most any single-stream writer of these files can do.

    .venv/bin/python bench/bench_generate.py                      # 1M events
    .venv/bin/python bench/bench_generate.py --events 10000000    # the big one
    .venv/bin/python bench/bench_generate.py --events 1000000 10000000
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import resource
import shutil
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from audotics import services
from audotics.services import free_port
from audotics.settings import Settings

DAYS = 3
REFERENCE_SAMPLE_BYTES = 32 * 2**20


def world_settings(base: dict, events: int) -> Settings:
    """A world of `events` lines; the catalog grows with it (as in bench_ingest.py)."""
    return Settings(
        **base,
        world_days=DAYS,
        world_events_per_day=events // DAYS,
        world_users=max(2_000, events // 500),
        world_tracks=max(5_000, events // 200),
        world_artists=max(300, events // 2_000),
        _env_file=None,
    )


def generate(base: dict, events: int) -> dict:
    """In a fresh process: generate and report the manifest's figures and this process's peak
    resident memory."""
    from demo.world import generate_world

    cpu_started = time.process_time()
    manifest = generate_world(world_settings(base, events), force=True, progress=False)
    return {
        "cpu_s": time.process_time() - cpu_started,  # both threads, catalog and events
        "lines": manifest.totals.lines,
        "catalog_s": manifest.seconds["catalog"],
        "events_s": manifest.seconds["events"],
        "json_bytes": manifest.json_bytes,
        "gzip_bytes": manifest.gzip_bytes,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
    }


def gzip_reference_seconds(events_root: Path, total_bytes: int) -> tuple[float, float]:
    """Wall and CPU seconds to gzip `total_bytes` of the generated JSON lines on one core: a
    sample of them is decompressed first, then compressed again and again up to the total."""
    from demo.world.landing import GZIP_LEVEL

    sample = bytearray()
    for path in sorted(events_root.rglob("*.jsonl.gz"), key=lambda p: -p.stat().st_size):
        sample += gzip.decompress(path.read_bytes())
        if len(sample) >= REFERENCE_SAMPLE_BYTES:
            break
    view = memoryview(bytes(sample))
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
    started, cpu_started, remaining = time.perf_counter(), time.process_time(), total_bytes
    while remaining > 0:
        compressor.compress(view[:remaining])
        remaining -= len(view)
    compressor.flush()
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="audotics-bench-generate-"))
    base = {"home": home, "postgres_port": free_port(), "redis_port": free_port()}
    settings = world_settings(base, args.events[0])
    spawn = multiprocessing.get_context("spawn")  # a clean process: its own peak memory
    rows = []
    try:
        services.EmbeddedPostgres(settings).up()
        for events in args.events:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                result = pool.submit(generate, base, events).result()
            reference = gzip_reference_seconds(
                Path(settings.landing_root) / "events", result["json_bytes"]
            )
            rows.append((result, *reference))
    finally:
        services.EmbeddedPostgres(settings).down()
        shutil.rmtree(home, ignore_errors=True)

    print(
        f"{'events':>11} {'catalog s':>9} {'events s':>9} {'events/s':>10} {'CPU s':>7} "
        f"{'peak RSS':>9} {'JSON MB':>8} {'gzip MB':>8} | {'gzip-only s':>11} "
        f"{'gzip-only ev/s':>14} {'CPU s':>7} | {'ratio':>5} {'CPU ratio':>9}"
    )
    for result, reference_s, reference_cpu_s in rows:
        lines, seconds = result["lines"], result["events_s"]
        print(
            f"{lines:>11,} {result['catalog_s']:>9.1f} {seconds:>9.1f} {lines / seconds:>10,.0f} "
            f"{result['cpu_s']:>7.1f} {result['peak_rss'] / 2**20:>6.0f} MB "
            f"{result['json_bytes'] / 1e6:>8,.0f} {result['gzip_bytes'] / 1e6:>8,.0f} | "
            f"{reference_s:>11.1f} {lines / reference_s:>14,.0f} {reference_cpu_s:>7.1f} | "
            f"{seconds / reference_s:>5.2f} {result['cpu_s'] / reference_cpu_s:>9.2f}"
        )
    print(
        "events s: generating and writing the event files (catalog s: building and loading the "
        "app tables); CPU s: the generating process's CPU time, both threads, catalog included. "
        "gzip-only: compressing the same JSON bytes on one core, nothing else. ratio: events s / "
        "gzip-only s (1.0: as fast as the write limit); CPU ratio: the same for CPU time, which "
        "a busy machine distorts less."
    )


if __name__ == "__main__":
    main()
