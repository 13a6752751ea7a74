"""Serving benchmark: publish throughput and read API latency/throughput, each beside the Redis
limit under it (redis-benchmark on the same server, same value size, same concurrency).

    .venv/bin/python bench/bench_serving.py [--users 20000] [--runs 3] [--seconds 5]

Everything runs on loopback in this one run: a private embedded Redis, a synthetic lake
(silver catalog, gold lists of two model versions), `audotics serve` with its default workers,
and `wrk` (C, epoll; one thread) as the load generator, which needs far less CPU per request
than the API, so it is not the bottleneck. Needs `wrk` and `redis-benchmark` on PATH: on
Debian/Ubuntu `apt-get install wrk redis-tools`, on macOS `brew install wrk redis`.
Reported figures are medians of --runs runs. The machine's load average is printed: on a shared
machine, other work lowers every figure alike, the ratios less so.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pyarrow as pa
import redis

from audotics import lake
from audotics.assignment import bounds
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.services import EmbeddedRedis, free_port, redis_benchmark_args
from audotics.settings import Settings
from serving import keys
from serving.publish import end_experiment, publish_recommendations, serve_experiment

API_KEY = "bench-key"
CONNECTIONS = (1, 16, 64)
VERSIONS = ("bench-a", "bench-b")
NOW = dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
TOOLS = {
    "wrk": "apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)",
    "redis-benchmark": "apt-get install redis-tools (Debian/Ubuntu) or brew install redis (macOS)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000, help="users with a list")
    parser.add_argument("--tracks", type=int, default=5_000)
    parser.add_argument("--list-length", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    args = parser.parse_args()
    missing = [f"{tool} not found: {how}" for tool, how in TOOLS.items() if not shutil.which(tool)]
    if missing:
        sys.exit("bench_serving needs these tools:\n  " + "\n  ".join(missing))

    home = Path(tempfile.mkdtemp(prefix="audotics-bench-serving-"))
    settings = Settings(
        _env_file=None, home=home, redis_port=free_port(), api_port=free_port(),
        api_keys=API_KEY, api_rate_limit_rps=1e9, api_rate_limit_burst=10**9,
        api_redis_timeout_ms=2000,
    )  # fmt: skip
    # The rate limiter stays on (its cost is measured) but never refuses; a longer Redis
    # timeout than the default makes an overloaded machine show as latency, not as 503s.
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    redis_server = EmbeddedRedis(settings)
    redis_server.up()
    try:
        reach = redis_benchmark_args(settings)
        write_lake(settings, args.users, args.tracks, args.list_length)
        value_size = publish_table(settings, reach, args.runs)
        redis_process = psutil.Process(int((redis_server.root / "redis.pid").read_text()))
        api_table(settings, reach, redis_process, value_size, args.runs, args.seconds, args.users)
    finally:
        redis_server.down()
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


# --- the lake -----------------------------------------------------------------------------------


def write_lake(settings: Settings, users: int, tracks: int, list_length: int) -> None:
    """Catalog, and per model version: `list_length` tracks per user, 20 similar per track."""
    rng = np.random.default_rng(7)
    user_ids = np.array([f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(users)])
    track_ids = np.array([f"{i:08x}-1111-4000-8000-{i:012x}" for i in range(tracks)])
    artist_ids = np.array([f"{i:08x}-2222-4000-8000-{i:012x}" for i in range(tracks // 10)])
    write(settings, tables.SILVER_TRACKS, {
        "track_id": track_ids, "title": [f"Track number {i}" for i in range(tracks)],
        "artist_id": artist_ids[np.arange(tracks) % len(artist_ids)],
        "valid_from": [NOW] * tracks, "is_current": [True] * tracks,
    })  # fmt: skip
    write(settings, tables.SILVER_ARTISTS, {
        "artist_id": artist_ids, "name": [f"Artist {i}" for i in range(len(artist_ids))],
        "valid_from": [NOW] * len(artist_ids), "is_current": [True] * len(artist_ids),
    })  # fmt: skip
    for version in VERSIONS:
        picks = rng.integers(0, tracks, size=(users, list_length))
        ranks = np.tile(np.arange(1, list_length + 1, dtype=np.int32), users)
        write(settings, tables.RECOMMENDATIONS, {
            "model_version": [version] * len(ranks), "user_id": np.repeat(user_ids, list_length),
            "rank": ranks, "track_id": track_ids[picks.ravel()], "score": 1.0 / ranks,
            "source": ["model"] * len(ranks),
        }, predicate=f"model_version = '{version}'")  # fmt: skip
        similar = rng.integers(0, tracks, size=(tracks, 20))
        similar_ranks = np.tile(np.arange(1, 21, dtype=np.int32), tracks)
        write(settings, tables.SIMILAR_TRACKS, {
            "model_version": [version] * len(similar_ranks), "track_id": np.repeat(track_ids, 20),
            "rank": similar_ranks, "similar_track_id": track_ids[similar.ravel()],
            "score": 1.0 / similar_ranks,
        }, predicate=f"model_version = '{version}'")  # fmt: skip
    write(settings, tables.MODEL_REGISTRY, {
        "model_version": [VERSIONS[0]], "status": ["published"], "status_changed_at": [NOW],
    })  # fmt: skip


def write(settings: Settings, table: Table, columns: dict, predicate: str | None = None) -> None:
    """Overwrite `table` (or the rows `predicate` matches) with `columns`, in the catalog's
    schema: the columns not given are null."""
    rows = len(next(iter(columns.values())))
    data = pa.table(
        {f.name: columns.get(f.name, pa.nulls(rows, f.type)) for f in table.schema},
        schema=table.schema,
    )
    lake.write_arrow(settings, table, data, mode="overwrite", predicate=predicate)


# --- publishing -------------------------------------------------------------------------------


def publish_table(settings: Settings, reach: list[str], runs: int) -> int:
    """Publish the two versions in turn (each a full load); returns the mean document size."""
    loads = []
    for run in range(runs * 2):
        result = publish_recommendations(settings, model_version=VERSIONS[run % 2])
        loads.append(result)
    client = redis.Redis.from_url(settings.redis_dsn)
    current = client.get(keys.CURRENT).decode()
    sizes = [len(v) for v in client.hvals(keys.users_key(current))]
    value_size = int(statistics.mean(sizes))
    documents = loads[0].users + loads[0].tracks
    docs_per_s = statistics.median((r.users + r.tracks) / r.load_seconds for r in loads)
    total_s = statistics.median(r.seconds for r in loads)
    pipelined_set = redis_benchmark(reach, "set", value_size, clients=50, pipeline=64,
                                    requests=max(documents, 50_000), runs=runs)  # fmt: skip
    print(f"\nPublish ({documents:,} documents of {value_size:,} bytes on average; "
          f"median of {len(loads)} full loads)")  # fmt: skip
    print_table(
        ["what", "documents/s", "MB/s", "vs SET -P"],
        [
            ["audotics publish: build + load + verify", f"{docs_per_s:,.0f}",
             f"{docs_per_s * value_size / 1e6:,.0f}", f"{docs_per_s / pipelined_set['rps']:.2f}"],
            ["  the same, whole call (lake read too)", f"{documents / total_s:,.0f}",
             f"{documents / total_s * value_size / 1e6:,.0f}",
             f"{documents / total_s / pipelined_set['rps']:.2f}"],
            ["redis-benchmark SET -P 64 -c 50", f"{pipelined_set['rps']:,.0f}",
             f"{pipelined_set['rps'] * value_size / 1e6:,.0f}", "1.00"],
        ],
    )  # fmt: skip
    print(f"goal: publish at least half of pipelined SET -> "
          f"{'met' if docs_per_s / pipelined_set['rps'] >= 0.5 else 'NOT met'}")  # fmt: skip
    return value_size


# --- the read API -----------------------------------------------------------------------------


def api_table(
    settings: Settings, reach: list[str], redis_process: psutil.Process, value_size: int,
    runs: int, seconds: int, users: int,
) -> None:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDOTICS_")}
    env.update({f"AUDOTICS_{name.upper()}": str(getattr(settings, name)) for name in (
        "home", "redis_port", "api_port", "api_keys", "api_rate_limit_rps",
        "api_rate_limit_burst", "api_workers")})  # fmt: skip
    url = f"http://127.0.0.1:{settings.api_port}"
    cores = os.cpu_count() or 1
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_ready(url)
        script = wrk_script(settings, users)
        processes = {"api": psutil.Process(server.pid), "redis": redis_process}
        rows = []
        for connections in CONNECTIONS:
            api = median_of(
                [wrk(url, script, connections, seconds, processes) for _ in range(runs)]
            )
            get = redis_benchmark(
                reach, "get", value_size, clients=connections, pipeline=1,
                requests=max(20_000, int(api["rps"] * seconds)), runs=runs,
            )  # fmt: skip
            rows.append([
                connections, f"{api['rps']:,.0f}", f"{api['p50']:.2f}", f"{api['p99']:.2f}",
                f"{get['rps']:,.0f}", f"{get['p50']:.2f}", f"{get['p99']:.2f}",
                f"{api['rps'] / get['rps']:.2f}", f"{api['errors']:.0f}",
                f"{api['api_us']:.0f} + {api['redis_us']:.0f} + {api['wrk_us']:.0f}",
                f"{cores * 1e6 / (api['api_us'] + api['redis_us'] + api['wrk_us']):,.0f}",
            ])  # fmt: skip
        without, with_experiment = experiment_p99(settings, url, script, seconds, runs, processes)
    finally:
        server.terminate()
        server.wait(30)
    print(f"\nRead API: GET /v1/users/{{id}}/recommendations, {settings.api_workers} workers, "
          f"wrk -t1, {seconds}s per run, median of {runs} runs; beside it redis-benchmark GET "
          f"of a {value_size:,}-byte value at the same concurrency")  # fmt: skip
    print_table(["conns", "API rps", "p50 ms", "p99 ms", "Redis GET rps", "p50 ms", "p99 ms",
                 "API/Redis rps", "non-2xx", "CPU us/req API+Redis+wrk", "CPU-bound rps"],
                rows)  # fmt: skip
    print(f"(CPU us/req: CPU time per request of the API processes, Redis and wrk, which the "
          f"machine's load changes little, unlike rps and latency. CPU-bound rps: {cores} cores "
          f"divided by their sum, the rate an otherwise idle machine would reach.)")  # fmt: skip
    best = max(float(r[1].replace(",", "")) for r in rows)
    p99_single = float(rows[0][3])
    print(f"goals: p99 at 1 connection {p99_single:.2f} ms (< 2 ms: "
          f"{'met' if p99_single < 2 else 'NOT met'}); max {best:,.0f} requests/s "
          f"(>= 10,000: {'met' if best >= 10_000 else 'NOT met'})")  # fmt: skip
    ratio = with_experiment / without
    print(f"\nA running experiment (2 arms, 50/50): p99 at 1 connection, median of {runs} "
          "runs each, interleaved")  # fmt: skip
    print_table(["conns", "p99 ms without", "p99 ms with", "with/without"],
                [[1, f"{without:.2f}", f"{with_experiment:.2f}", f"{ratio:.3f}"]])  # fmt: skip
    print(
        f"goal: assignment adds at most 5% to p99 -> {ratio - 1:+.1%} "
        f"({'met' if ratio <= 1.05 else 'NOT met'})"
    )


def experiment_p99(
    settings: Settings, url: str, script: Path, seconds: int, runs: int,
    processes: dict[str, psutil.Process],
) -> tuple[float, float]:  # fmt: skip
    """Median p99 at 1 connection without and with an experiment between the two versions;
    the runs alternate, so a change in the machine's load hits both alike."""
    split = list(zip(("control", "challenger"), VERSIONS, bounds([0.5, 0.5]), strict=True))
    without, with_experiment = [], []
    for _ in range(runs):
        without.append(wrk(url, script, 1, seconds, processes)["p99"])
        serve_experiment(settings, "bench-ab", "bench-ab", split)
        with_experiment.append(wrk(url, script, 1, seconds, processes)["p99"])
        end_experiment(settings)
    return statistics.median(without), statistics.median(with_experiment)


def wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("the API did not become ready in 60 s")


def wrk_script(settings: Settings, users: int) -> Path:
    """Requests cycle through 2,000 users, one in ten without a list (the fallback path)."""
    paths = [f"/v1/users/{i:08x}-0000-4000-8000-{i:012x}/recommendations"
             for i in range(0, users, max(1, users // 1800))][:1800]  # fmt: skip
    paths += [f"/v1/users/{i:08x}-9999-4000-8000-{i:012x}/recommendations" for i in range(200)]
    script = settings.state_dir / "bench.lua"
    script.write_text(
        f'wrk.headers["X-API-Key"] = "{API_KEY}"\n'
        "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )
    return script


def wrk(
    url: str, script: Path, connections: int, seconds: int, processes: dict[str, psutil.Process]
) -> dict[str, float]:
    """Throughput, latency and CPU per request of one wrk run."""
    cpu_before = {name: cpu_seconds(process) for name, process in processes.items()}
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = run_tool(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    )
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    per_request = {
        f"{name}_us": (cpu_seconds(process) - cpu_before[name]) / requests * 1e6
        for name, process in processes.items()
    }
    wrk_seconds = (wrk_after.ru_utime + wrk_after.ru_stime) - (
        wrk_before.ru_utime + wrk_before.ru_stime
    )
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency_ms(output, "50%"),
        "p99": latency_ms(output, "99%"),
        **per_request,
        "wrk_us": wrk_seconds / requests * 1e6,
        "errors": (int(failed.group(1)) if failed else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU time of a process and its children (the API's workers)."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        times = member.cpu_times()
        total += times.user + times.system
    return total


def latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def redis_benchmark(
    reach: list[str], test: str, size: int, *, clients: int, pipeline: int, requests: int,
    runs: int,
) -> dict[str, float]:  # fmt: skip
    """Median rps, p50 and p99 of `runs` redis-benchmark runs (GET runs SET first, so the
    values it reads are `size` bytes)."""
    results = []
    for _ in range(runs):
        output = run_tool(
            ["redis-benchmark", *reach, "-t", "set" if test == "set" else
             "set,get", "-d", str(size), "-c", str(clients), "-P", str(pipeline),
             "-n", str(requests), "-r", "100000", "--csv"],
        )  # fmt: skip
        row = next(r for r in csv.DictReader(output.splitlines()) if r["test"] == test.upper())
        results.append({"rps": float(row["rps"]), "p50": float(row["p50_latency_ms"]),
                        "p99": float(row["p99_latency_ms"])})  # fmt: skip
    return median_of(results)


def run_tool(command: list[str]) -> str:
    """The standard output of a load tool; its exit code and standard error when it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pairs = zip(["", *command[:-1]], command, strict=True)
        shown = ["***" if prev == "-a" else a for prev, a in pairs]  # no password on screen
        sys.exit(f"{' '.join(shown)} exited {done.returncode}: "
                 f"{(done.stderr or done.stdout).strip()[-2000:]}")  # fmt: skip
    return done.stdout


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(r[name] for r in results) for name in results[0]}


def print_table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for index, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if index == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
