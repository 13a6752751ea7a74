"""spark-submit entry point of recommender training (the Spark MLlib engine on a cluster):

    spark-submit spark_jobs/train_als.py --as-of 2026-11-03 [--engine spark]

Runs the whole pipeline (train, evaluate, gate, register, recommend) and prints its JSON
summary; exits 1 with the reason when the gate rejects the model. The logic is
`spark_jobs.recommender.train`; the SparkSession comes from audotics.spark (spark-submit's
master and confs win).
"""

import logging
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

from audotics.errors import AudoticsError
from spark_jobs.recommender.train import train_command

if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        train_command(prog_name="train_als.py")
    except AudoticsError as exc:  # e.g. the gate's verdict: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
