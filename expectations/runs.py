"""The reconciliation gate on ops/ingest_runs: every line read is accounted for, exactly once."""

from __future__ import annotations

import great_expectations.expectations as gxe

from audotics.lake import tables
from expectations.validation import Suite


def reconciliation() -> Suite:
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
