"""Ingestion: landing files and the operational catalog into the lake (bronze, quarantine,
silver), behind Great Expectations gates. One daily interval = one landing day; every step is
idempotent on its interval, so a rerun or a backfill replaces exactly that day's slice."""
