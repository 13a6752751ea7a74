"""Recommender training: ALS on the interactions table, evaluated beside a popularity baseline,
gated, registered on the lake, and turned into batch recommendations. See README.md here."""

import os

# implicit's ALS runs its own threads; a multithreaded OpenBLAS underneath oversubscribes the
# cores and slows it down many times. It must be set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
