"""A whole night at scale: one landing day of N events through `audotics run`, each stage's wall
time and peak memory, on the embedded default and (with --spark) with the Spark engine on a
local standalone cluster; then the read API's throughput for the published users.

Generates a world (real embedded PostgreSQL and Redis) of one day: by default 10M events, 500K
users, 100K tracks, 10K artists. Runs `audotics run` as a child process, reads its stage lines
as they come, and samples every 0.5 s the resident memory of the run's process and of its
children (Spark's JVM, dbt) with psutil: each stage gets the peak seen while it ran. Then runs
bench/bench_serving.py for the same number of users and tracks (its table is printed as is).

    .venv/bin/python bench/bench_nightly.py                                  # 10M events
    .venv/bin/python bench/bench_nightly.py --events 1000000 --users 50000 --tracks 20000 \\
        --artists 2000 --spark                                                # quicker
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from audotics import services
from audotics.services import free_port
from audotics.settings import Settings
from demo.world.generate import generate_world
from orchestration.spark_cluster import local_cluster
from orchestration.stages import STAGES

STAGE_DONE = re.compile(r"^\[(\d+)/\d+\] (.+?) done in ([\d.]+)s: (.*)$")
SAMPLE_SECONDS = 0.5


@dataclass
class StagePeaks:
    """Peak RSS (bytes) seen per stage number: of the run's process, and of its children."""

    current: int = 1
    own: dict[int, int] = field(default_factory=dict)
    children: dict[int, int] = field(default_factory=dict)

    def sample(self, process: psutil.Process) -> None:
        try:
            own = process.memory_info().rss
            kids = sum(child.memory_info().rss for child in process.children(recursive=True))
        except psutil.Error:  # the process or a child just ended
            return
        self.own[self.current] = max(self.own.get(self.current, 0), own)
        self.children[self.current] = max(self.children.get(self.current, 0), kids)


def run_night(env: dict[str, str]) -> tuple[list[tuple[str, float, str]], StagePeaks, float]:
    """`audotics run` under `env`: its stage lines (name, seconds, summary), peaks, wall s."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ["audotics", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peaks, stages, done = StagePeaks(), [], threading.Event()
    watched = psutil.Process(process.pid)

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            peaks.sample(watched)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if stage := STAGE_DONE.match(line.strip()):
            stages.append((stage[2], float(stage[3]), stage[4]))
            peaks.current = int(stage[1]) + 1
            print(line.rstrip(), file=sys.stderr)
    process.wait()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"audotics run failed ({process.returncode}):\n{''.join(output)[-4000:]}")
    return stages, peaks, time.perf_counter() - started


def print_night(title: str, night: tuple[list[tuple[str, float, str]], StagePeaks, float]) -> None:
    stages, peaks, wall = night
    print(f"\n### {title}: {wall:.0f} s end to end\n")
    print("| stage | wall s | peak RSS, run process MiB | peak RSS, children MiB | result |")
    print("|---|---:|---:|---:|---|")
    for number, (name, seconds, summary) in enumerate(stages, 1):
        own, kids = peaks.own.get(number, 0) / 2**20, peaks.children.get(number, 0) / 2**20
        print(f"| {name} | {seconds:.1f} | {own:,.0f} | {kids:,.0f} | {summary[:90]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the one day")
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--artists", type=int, default=10_000)
    parser.add_argument("--spark", action="store_true", help="also the Spark engine on a cluster")
    parser.add_argument("--workers", type=int, default=2, help="cluster workers with --spark")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="audotics-bench-nightly-"))
    settings = Settings(
        home=home, postgres_port=free_port(), redis_port=free_port(),
        spark_cluster_port=free_port(), spark_cluster_ui_port=free_port(),
        world_days=1, world_events_per_day=args.events, world_users=args.users,
        world_tracks=args.tracks, world_artists=args.artists, _env_file=None,
    )  # fmt: skip
    services.up(settings)
    try:
        started = time.perf_counter()
        generate_world(settings, progress=True)
        print(f"generated {args.events:,} events in {time.perf_counter() - started:.0f}s",
              file=sys.stderr)  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDOTICS_")}
        env.update(
            {f"AUDOTICS_{name.upper()}": str(getattr(settings, name))
             for name in ("home", "postgres_port", "redis_port", "world_days",
                          "world_events_per_day", "world_users", "world_tracks", "world_artists")},
            PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        )  # fmt: skip
        print(f"load average at start: {os.getloadavg()[0]:.1f}; stages: {len(STAGES)}")
        print_night("embedded default (implicit engine, Spark local[*])", run_night(env))
        if args.spark:
            with local_cluster(settings, workers=args.workers) as cluster:
                spark_env = {**env, "AUDOTICS_SPARK_MASTER": cluster.master_url,
                             "AUDOTICS_RECOMMENDER_ENGINE": "spark"}  # fmt: skip
                night = run_night(spark_env)
            print_night(f"Spark engine on a {args.workers}-worker standalone cluster", night)
        print(f"\nload average at end: {os.getloadavg()[0]:.1f}\n\n### read API for these users\n")
        serving = Path(__file__).with_name("bench_serving.py")
        served = subprocess.run(
            [sys.executable, str(serving), "--users", str(args.users), "--tracks", str(args.tracks),
             "--runs", "1"], check=False,
        )  # fmt: skip
        if served.returncode != 0:
            print("(no read API figures: bench_serving.py failed, its message is above)")
    finally:
        services.down(settings)


if __name__ == "__main__":
    main()
