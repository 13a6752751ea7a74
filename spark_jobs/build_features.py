"""spark-submit application: build features/user_features, features/track_features and
features/interactions as of one snapshot date.

    .venv/bin/spark-submit spark_jobs/build_features.py --as-of 2026-11-03 [--run-id ID]

Under spark-submit the submitted master and confs win; run with plain Python it uses the
settings' master (`AUDOTICS_SPARK_MASTER`, local[*] by default).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from audotics.errors import AudoticsError
from audotics.settings import get_settings
from audotics.spark import spark_job
from spark_jobs.features.job import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--as-of",
        required=True,
        type=dt.date.fromisoformat,
        help="Snapshot date D (UTC): features use events with ts < D+1 00:00.",
    )
    parser.add_argument("--run-id", default=None, help="Recorded in the Delta commits.")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    run_id = args.run_id or f"build_features-{args.as_of}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    try:
        with spark_job(settings, f"build_features {args.as_of}") as spark:
            for write in run(spark, settings, args.as_of, run_id):
                print(
                    f"features/{write.table}: {write.rows} rows as of {args.as_of} "
                    f"(v{write.version})"
                )
    except AudoticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
