"""Bronze to silver: run the day through an ingestion engine (`ingestion.engines`, the rules of
`ingestion.rules`), gate it, and commit quarantine and silver.

The engine judges the whole day and stages the outcome (duplicates are decided once the whole
day is seen), the gates run on the day's counts, and only then is each output replaced for the
landing day in one commit (`landing_date = D`). So a rerun of the day gives the same tables, an
event resent on another day is a duplicate whichever day is ingested first, and a failed gate
commits nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from expectations import events as event_suites
from expectations.validation import Suite, validate
from ingestion import rules
from ingestion.engines import Engine, engine_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefineResult:
    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    duplicate_rows: int
    unknown_fields: dict[str, int]


def _staging_folder(settings: Settings) -> Path:
    folder = Path(settings.state_dir) / "refine"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def day_engine(settings: Settings, day: dt.date) -> Iterator[Engine]:
    """The engine for landing day `day` (chosen by its bronze lines), with a staging folder."""
    lines = lake.partition_rows(settings, tables.BRONZE_EVENTS, "landing_date", day)
    with (
        tempfile.TemporaryDirectory(prefix=f"{day}-", dir=_staging_folder(settings)) as staging,
        engine_for(settings, day, Path(staging), lines) as engine,
    ):
        yield engine


def gate_suite() -> Suite:
    """The suite a refine gates on (the day's counts)."""
    return event_suites.refine(rules.REASON_FAMILIES)


def refine_day(
    settings: Settings, day: dt.date, run_id: str, engine: Engine | None = None
) -> RefineResult:
    """Refine landing day `day` from bronze; raises `QualityGateError` (committing nothing)
    when a gate fails. `engine`: the day's from `day_engine` (perhaps prepared), which the
    caller closes; else one is opened here."""
    with ExitStack() as resources:
        if engine is None:
            engine = resources.enter_context(day_engine(settings, day))
        counts = engine.judge(run_id)
        summary = event_suites.RefineSummary(
            bronze_rows=counts.bronze_rows,
            silver_rows=counts.silver_rows,
            quarantine_rows=counts.quarantine_rows,
            duplicate_rows=counts.duplicate_rows,
            rows_by_reason=counts.reasons,
            silver_columns=counts.silver_columns,
            silver_nulls=counts.silver_nulls,
            silver_event_ids=counts.silver_event_ids,
            silver_unknown_event_types=counts.silver_unknown_event_types,
        )
        families = rules.REASON_FAMILIES
        gate = validate(settings, gate_suite(), [summary.row(families)], f"{day}__{run_id}")
        gate.raise_if_critical(str(tables.SILVER_EVENTS))
        engine.commit({"run_id": run_id, "interval": day.isoformat(), "step": "refine_events"})

    if counts.unknown_fields:
        log.warning(
            "schema drift in landing %s: unknown fields kept in bronze: %s",
            day,
            dict(counts.unknown_fields),
        )
    result = RefineResult(
        bronze_rows=counts.bronze_rows,
        silver_rows=counts.silver_rows,
        quarantine_rows=counts.quarantine_rows,
        duplicate_rows=counts.duplicate_rows,
        unknown_fields=dict(counts.unknown_fields),
    )
    log.info(
        "refined landing %s with %s: %d bronze rows, %d silver, %d quarantined, %d duplicates",
        day, engine.name, result.bronze_rows, result.silver_rows, result.quarantine_rows,
        result.duplicate_rows,
    )  # fmt: skip
    return result
