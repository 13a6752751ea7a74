"""The gates on an ops/ingest_runs row: every line read is accounted for, exactly once
(reconciliation), and the day brought the data it should have (volume)."""

from __future__ import annotations

from audotics.lake import tables
from audotics.settings import Settings
from expectations.validation import CRITICAL, WARNING, Suite, expect


def reconciliation() -> Suite:
    return Suite(
        name="ingest_runs.reconciliation",
        table=tables.INGEST_RUNS.path,
        description="input_records = bronze_rows = silver_rows + quarantine_rows + duplicate_rows",
        expectations=(
            expect(
                "ExpectColumnPairValuesToBeEqual",
                "Gate: every record read is a bronze row",
                column_A="input_records",
                column_B="bronze_rows",
            ),
            expect(
                "ExpectColumnPairValuesToBeEqual",
                "Gate: every record read is in silver, in quarantine or a duplicate",
                column_A="input_records",
                column_B="accounted_rows",
            ),
        ),
    )


def volume(settings: Settings) -> Suite:
    """On the run row with `min_records`: at least one record, and at least
    AUDOTICS_INGEST_MIN_VOLUME_SHARE of the trailing average (`ingestion.runs.volume_expected`).
    Critical with AUDOTICS_INGEST_VOLUME_GATE=fail; otherwise a failure is a warning."""
    severity = CRITICAL if settings.ingest_volume_gate == "fail" else WARNING
    return Suite(
        name="ingest_runs.volume",
        table=tables.INGEST_RUNS.path,
        description="the day has landing files, and input_records >= min_records: "
        f"{settings.ingest_min_volume_share:g} x the average of the previous "
        f"{settings.ingest_volume_trailing_days} successful days (at least 1)",
        expectations=(
            expect(
                "ExpectColumnValuesToBeBetween",
                "the day has landing files",
                severity=severity,
                column="landing_files",
                min_value=1,
            ),
            expect(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                "input_records is at least min_records (the volume expected)",
                severity=severity,
                column_A="input_records",
                column_B="min_records",
                or_equal=True,
            ),
        ),
    )
