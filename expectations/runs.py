"""The gates on an ops/ingest_runs row: every line read is accounted for, exactly once
(reconciliation), and the day brought the data it should have (volume)."""

from __future__ import annotations

from audotics.lake import tables
from audotics.settings import Settings
from expectations.validation import Suite, gx_module


def reconciliation() -> Suite:
    gxe = gx_module("great_expectations.expectations")  # GX loads when a suite is built

    return Suite(
        name="ingest_runs.reconciliation",
        table=tables.INGEST_RUNS.path,
        description="input_records = bronze_rows = silver_rows + quarantine_rows + duplicate_rows",
        expectations=(
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="input_records", column_B="bronze_rows", meta={"critical": True}
            ),
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="input_records", column_B="accounted_rows", meta={"critical": True}
            ),
        ),
    )


def volume(settings: Settings) -> Suite:
    """On the run row with `min_records`: at least one record, and at least
    AUDOTICS_INGEST_MIN_VOLUME_SHARE of the trailing average (`ingestion.runs.volume_expected`).
    Critical with AUDOTICS_INGEST_VOLUME_GATE=fail; otherwise a failure is a warning."""
    gxe = gx_module("great_expectations.expectations")

    meta = {"critical": settings.ingest_volume_gate == "fail"}
    return Suite(
        name="ingest_runs.volume",
        table=tables.INGEST_RUNS.path,
        description="the day has landing files, and input_records >= min_records: "
        f"{settings.ingest_min_volume_share:g} x the average of the previous "
        f"{settings.ingest_volume_trailing_days} successful days (at least 1)",
        expectations=(
            gxe.ExpectColumnValuesToBeBetween(column="landing_files", min_value=1, meta=meta),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="input_records", column_B="min_records", or_equal=True, meta=meta
            ),
        ),
    )
