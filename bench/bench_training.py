"""Training speed and memory at scale, on generated clustered interactions.

    python bench/bench_training.py                 # 1M, both engines (minutes: Spark)
    python bench/bench_training.py 1M 10M 50M      # sizes: users x items grow with them
    python bench/bench_training.py 10M --spark-max 10M   # Spark at 10M too (slow)

Per size it times three fits with the same params (64 factors, 15 iterations):
- bare implicit: `AlternatingLeastSquares.fit` on a prebuilt confidence CSR (the floor);
- project (implicit): the training step's fit, from the interaction pairs: matrix build,
  confidence weighting and the engine (`ImplicitALS.fit`); the goal is <= 1.2 x bare;
  "its overhead" times the matrix build and weighting alone (the part bare does not do);
- project (spark): `SparkALS.fit` on local[2], once (skipped above --spark-max, default 1M:
  on a 2-core machine Spark's ALS takes minutes per million interactions).
The implicit fits run --repeat times (default 3), interleaved, and the best time is kept.
Peak memory is the highest resident set of the whole process (so including the generated
data) plus its children (Spark's JVM) while the fit ran, sampled every 50 ms.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from functools import cache

import numpy as np
import psutil
from implicit.cpu.als import AlternatingLeastSquares

from audotics.settings import get_settings
from demo.synthetic import clustered_interactions
from spark_jobs.recommender import spark_data
from spark_jobs.recommender.data import Interactions
from spark_jobs.recommender.engines import ALSParams
from spark_jobs.recommender.engines.implicit_als import ImplicitALS
from spark_jobs.recommender.weighting import confidence

PARAMS = ALSParams(factors=64, regularization=1.0, alpha=5.0, iterations=15, weighting="none")


def size(text: str) -> int:
    text = text.upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def shape(n_interactions: int) -> tuple[int, int]:
    """users x items for a size: ~20 interactions per user, items ~ n / 250 (>= 2,000)."""
    return n_interactions // 20, max(2_000, n_interactions // 250)


class PeakMemory:
    """Highest RSS of this process and its children while in the `with` block."""

    def __enter__(self) -> "PeakMemory":
        self.peak, self._running = 0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = psutil.Process()
        while self._running:
            processes = [me, *me.children(recursive=True)]
            rss = 0
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):  # a child that just ended
                    rss += process.memory_info().rss
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()


def measure(fit: Callable[[], object]) -> tuple[float, float]:
    with PeakMemory() as memory:
        started = time.perf_counter()
        fit()
        seconds = time.perf_counter() - started
    return seconds, memory.peak / 2**30


def bare_implicit(data: Interactions) -> Callable[[], object]:
    prebuilt = confidence(data.matrix(), PARAMS.weighting, PARAMS.alpha)  # outside the timing

    def fit() -> None:
        model = AlternatingLeastSquares(
            factors=PARAMS.factors,
            regularization=PARAMS.regularization,
            alpha=1.0,
            iterations=PARAMS.iterations,
            random_state=PARAMS.seed,
        )
        model.fit(prebuilt, show_progress=False)

    return fit


def generated(n: int) -> Interactions:
    n_users, n_items = shape(n)
    users, items, plays = clustered_interactions(n_users, n_items, n, seed=1)
    return Interactions(np.arange(n_users), np.arange(n_items), users, items, plays, None)


def bench_size(
    label: str, engines: list[str], spark_max: str, spark_engine, repeat: int
) -> list[tuple]:
    """Implicit fits run `repeat` times, interleaved with the bare fit, best time kept: the
    machine is shared, so the minimum is the least disturbed run. Spark runs once."""
    data = generated(size(label))
    dims = f"{data.n_users:,} x {data.n_items:,}"
    fits = {"bare implicit": bare_implicit(data)}
    if "implicit" in engines:
        fits["project implicit"] = lambda: ImplicitALS().fit(data.matrix(), PARAMS)
        # what the project adds to a bare fit, alone: steadier than a difference of two fits
        fits["  its overhead"] = lambda: confidence(data.matrix(), PARAMS.weighting, PARAMS.alpha)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in fits}
    for _ in range(repeat):
        for name, fit in fits.items():
            runs[name].append(measure(fit))
    best = {name: (min(s for s, _ in r), max(m for _, m in r)) for name, r in runs.items()}
    if "spark" in engines:
        if size(label) > size(spark_max):
            best["project spark"] = (np.nan, np.nan)
        else:
            engine = spark_engine()  # the JVM starts outside the timing
            frames = spark_data.from_interactions(engine.spark, data)
            best["project spark"] = measure(lambda: engine.fit(frames, PARAMS))
    bare_seconds = best["bare implicit"][0]
    skipped = f"skipped: above --spark-max {spark_max} (local[2] would take too long)"
    return [
        (label, dims, name, seconds, memory, seconds / bare_seconds,
         skipped if np.isnan(seconds) else "")
        for name, (seconds, memory) in best.items()
    ]  # fmt: skip


@cache
def spark_als():
    """One local[2] Spark engine for all sizes, started on first use."""
    from audotics.spark import spark_session
    from spark_jobs.recommender.engines.spark_als import SparkALS

    settings = get_settings(spark_master="local[2]", spark_driver_memory="12g")
    return SparkALS(spark_session(settings, "bench-training"), tempfile.mkdtemp("-checkpoints"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", default=["1M"], help="interactions, e.g. 1M 10M 50M")
    parser.add_argument("--engines", default="implicit,spark", help="implicit,spark")
    parser.add_argument("--spark-max", default="1M", help="largest size Spark runs at")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each implicit fit")
    args = parser.parse_args()
    engines = args.engines.split(",")
    rows: list[tuple] = []
    for label in args.sizes:
        size_rows = bench_size(label, engines, args.spark_max, spark_als, args.repeat)
        print_table(size_rows)
        rows += size_rows
    print("\nAll sizes:")
    print_table(rows)


def print_table(rows: list[tuple]) -> None:
    header = f"{'size':>5} | {'users x items':>22} | {'fit':<16} | {'seconds':>8} | "
    header += f"{'peak GB':>7} | {'x bare':>6} | note"
    print(header)
    print("-" * len(header))
    for label, dims, what, seconds, memory, ratio, note in rows:
        print(
            f"{label:>5} | {dims:>22} | {what:<16} | {seconds:8.2f} | {memory:7.2f} | "
            f"{ratio:6.2f} | {note}"
        )


if __name__ == "__main__":
    main()
