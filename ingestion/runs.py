"""ops/ingest_runs: one row per run and interval, kept as the run goes, and the day's gates.

The row is written FIRST, as `running`, then updated after each step (`steps_done`), and
finally set to `success`, `warning` or `failed`. A landing file bronze refuses (unreadable, or
past the size limit) fails the row with the file's name, and nothing of the day is committed. A
run that dies leaves its row `running` with the steps it committed; the next run of the day
redoes every step (each replaces the day's slice) and marks that row `failed`, interrupted.

The gates, on the final row, as Great Expectations suites (`expectations.runs`):
- reconciliation: input_records = bronze_rows = silver_rows + quarantine_rows + duplicate_rows,
  where input_records is counted from the landing files' bytes as bronze streams them
  (`landing.RecordCount`), independently of the line splitting that filled bronze, and the
  other counts are read back from the committed tables;
- volume: a day with no landing files, or with fewer records than
  AUDOTICS_INGEST_MIN_VOLUME_SHARE of the trailing average of the previous successful days, is
  flagged: `warning`, or `failed` with AUDOTICS_INGEST_VOLUME_GATE=fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from audotics import lake
from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.settings import Settings
from expectations import runs as run_suites
from expectations.validation import QualityGateError, Suite, validate_suites
from ingestion.landing import day_folder, landing_files

log = logging.getLogger(__name__)

STEPS = ("bronze", "refine")  # what a run commits before it reconciles, in order
RUNNING, SUCCESS, WARNING, FAILED = "running", "success", "warning", "failed"
RUN_STATUSES = (SUCCESS, WARNING, FAILED, RUNNING)  # the dbt var ingest_run_statuses


class IngestRunError(AudoticsError):
    """A run step was asked for out of order (its run row is missing or unfinished)."""


def interval_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rows(settings: Settings, where: ds.Expression) -> list[dict[str, Any]]:
    if not lake.exists(settings, tables.INGEST_RUNS):
        return []
    return lake.read_arrow(settings, tables.INGEST_RUNS, filter=where).to_pylist()


def _start_scalar(day: dt.date) -> pa.Scalar:
    return pa.scalar(interval_start(day), tables.UTC_TIMESTAMP)


def _on_day(day: dt.date) -> ds.Expression:
    return ds.field("interval_start") == _start_scalar(day)


def _write(settings: Settings, day: dt.date, rows: Sequence[dict], step: str) -> None:
    """Replace these runs' rows of the day in one commit."""
    run_ids = ", ".join(_quoted(row["run_id"]) for row in rows)
    lake.write_arrow(
        settings, tables.INGEST_RUNS, pa.Table.from_pylist(list(rows), tables.INGEST_RUNS.schema),
        mode="overwrite",
        predicate=f"interval_start = '{interval_start(day).isoformat()}' AND run_id IN ({run_ids})",
        schema_mode="merge",  # a table from before steps_done/status_reason gains them
        metadata={"run_id": rows[0]["run_id"], "interval": day.isoformat(), "step": step},
    )  # fmt: skip


def summary(row: dict[str, Any]) -> str:
    """A finished run row in one line: its day, counts, status and any reason."""
    line = (
        f"{row['interval_start']:%Y-%m-%d}: {row['input_records']} in, "
        f"{row['silver_rows']} silver, {row['quarantine_rows']} quarantined, "
        f"{row['duplicate_rows']} duplicates, {row['status']}"
    )
    return f"{line}: {row['status_reason']}" if row["status_reason"] else line


def run_row(settings: Settings, day: dt.date, run_id: str) -> dict[str, Any]:
    """This run's row of the day; an error if the run has not started the day."""
    found = _rows(settings, _on_day(day) & (ds.field("run_id") == run_id))
    if not found:
        raise IngestRunError(
            f"run {run_id} has no row for landing day {day} in {tables.INGEST_RUNS}: "
            "land the day first (its bronze step starts the run)"
        )
    return found[0]


def start_run(settings: Settings, day: dt.date, run_id: str) -> dict[str, Any]:
    """Record the run as `running`, with the day's landing files. Rows of earlier runs of the
    day still `running` died mid-way: they are marked in the same commit."""
    files = landing_files(settings, day)
    interrupted = [
        row for row in _rows(settings, _on_day(day))
        if row["status"] == RUNNING and row["run_id"] != run_id
    ]  # fmt: skip
    for row in interrupted:
        steps = ", ".join(row.get("steps_done") or []) or "no step"
        log.warning(
            "landing day %s: run %s stopped after %s; run %s redoes the day",
            day, row["run_id"], steps, run_id,
        )  # fmt: skip
        row.update(
            status=FAILED, status_reason=f"interrupted after {steps}: run {run_id} redid the day"
        )
    start = interval_start(day)
    row = {
        "run_id": run_id,
        "interval_start": start,
        "interval_end": start + dt.timedelta(days=1),
        "landing_files": len(files),
        "started_at": dt.datetime.now(dt.UTC),
        "status": RUNNING,
        "steps_done": [],
    }
    _write(settings, day, [row, *interrupted], "start_run")
    log.info("landing day %s: run %s started, %d landing files", day, run_id, len(files))
    return row


def step_done(settings: Settings, day: dt.date, run_id: str, step: str, **counts: Any) -> dict:
    """Record that `step` committed, with the counts it reports."""
    if step not in STEPS:
        raise ValueError(f"unknown ingestion step {step!r}; the steps are {STEPS}")
    row = run_row(settings, day, run_id)
    done = [s for s in row.get("steps_done") or [] if s != step]
    row.update(counts, steps_done=[*done, step])
    _write(settings, day, [row], step)
    return row


def fail_run(settings: Settings, day: dt.date, run_id: str, reason: str) -> dict[str, Any]:
    """End the run as `failed`, for `reason`, where a step stopped before its commit."""
    row = run_row(settings, day, run_id)
    row.update(status=FAILED, status_reason=reason, finished_at=dt.datetime.now(dt.UTC))
    _write(settings, day, [row], "fail")
    log.error("%s %s: run %s failed: %s", tables.INGEST_RUNS, day, run_id, reason)
    return row


# --- the volume gate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """What the volume gate expects of a day, and why a day below it is flagged."""

    min_records: int
    trailing_days: tuple[dt.date, ...]  # the successful days averaged, newest first
    trailing_average: float | None

    def finding(self, row: dict[str, Any], folder: str) -> str:
        """Why `row` is flagged (call when it is)."""
        files = row["landing_files"]
        if not files:
            return f"no landing files in {folder}"
        records = f"{row['input_records']:,} records in {files} landing file{'s' * (files > 1)}"
        if self.trailing_average is None:
            return f"{records}, and no earlier successful day to compare with"
        days = f"{self.trailing_days[-1]}..{self.trailing_days[0]}"
        return (
            f"{records}: under {self.min_records:,}, the minimum share of the trailing average "
            f"{self.trailing_average:,.0f} of {len(self.trailing_days)} successful days ({days})"
        )


def volume_expected(
    history: Iterable[dict[str, Any]], day: dt.date, share: float, trailing_days: int
) -> Volume:
    """The volume a day needs, from the earlier days' runs (pure): at least one record, and at
    least `share` of the average input of the last `trailing_days` days whose latest finished
    run succeeded (a day rerun with a warning no longer counts)."""
    latest: dict[dt.datetime, dict[str, Any]] = {}
    for row in history:
        start, finished = row["interval_start"], row["finished_at"]
        if start.date() >= day or finished is None:
            continue
        if start not in latest or finished > latest[start]["finished_at"]:
            latest[start] = row
    good = sorted(
        (r for r in latest.values() if r["status"] == SUCCESS), key=lambda r: r["interval_start"]
    )
    good = good[-trailing_days:][::-1]
    if not good:
        return Volume(1, (), None)
    average = sum(r["input_records"] for r in good) / len(good)
    return Volume(
        max(1, math.ceil(share * average)), tuple(r["interval_start"].date() for r in good), average
    )


# --- the end of a run -------------------------------------------------------------------------


def _rows_of_day(settings: Settings, table: tables.Table, day: dt.date) -> int:
    if not lake.exists(settings, table):
        return 0
    scan = lake.dataset(settings, table)
    return scan.count_rows(filter=ds.field("landing_date") == day)


def row_suites(settings: Settings) -> list[Suite]:
    """The suites a run row is validated with, in order: the reconciliation, the volume."""
    return [run_suites.reconciliation(), run_suites.volume(settings)]


def reconcile(settings: Settings, day: dt.date, run_id: str) -> dict[str, Any]:
    """Count the tables, gate the run (reconciliation, then volume) and record its outcome.

    Raises `QualityGateError` when the run failed a gate: the reconciliation, or the volume
    with AUDOTICS_INGEST_VOLUME_GATE=fail. A volume `warning` is returned, not raised."""
    row = run_row(settings, day, run_id)
    missing = [step for step in STEPS if step not in (row.get("steps_done") or [])]
    if missing:
        raise IngestRunError(
            f"run {run_id} has not finished {', '.join(missing)} for landing day {day}: "
            "rerun the day"
        )
    row.update(
        bronze_rows=_rows_of_day(settings, tables.BRONZE_EVENTS, day),
        silver_rows=_rows_of_day(settings, tables.SILVER_EVENTS, day),
        quarantine_rows=_rows_of_day(settings, tables.QUARANTINE_EVENTS, day),
    )
    history = _rows(
        settings, ds.field("interval_start") < pa.scalar(interval_start(day), tables.UTC_TIMESTAMP)
    )
    volume = volume_expected(
        history, day, settings.ingest_min_volume_share, settings.ingest_volume_trailing_days
    )
    accounted = row["silver_rows"] + row["quarantine_rows"] + row["duplicate_rows"]
    checked = {k: v for k, v in row.items() if k != "steps_done"}  # a list: not a column
    batch = [{**checked, "accounted_rows": accounted, "min_records": volume.min_records}]
    batch_id = f"{day.isoformat()}__{run_id}"
    reconciled, volume_outcome = validate_suites(settings, row_suites(settings), batch, batch_id)

    if reconciled.critical_failures:
        status, reason = FAILED, "reconciliation: " + "; ".join(reconciled.critical_failures)
    elif not volume_outcome.success:
        status = FAILED if volume_outcome.critical_failures else WARNING
        reason = "volume gate: " + volume.finding(row, str(day_folder(settings, day)))
    else:
        status, reason = SUCCESS, None
    row.update(status=status, status_reason=reason, finished_at=dt.datetime.now(dt.UTC))
    _write(settings, day, [row], "reconcile")
    log.log(logging.INFO if status == SUCCESS else logging.WARNING, "%s", summary(row))
    reconciled.raise_if_critical(str(tables.INGEST_RUNS))
    if status == FAILED:
        raise QualityGateError(
            f"{reason} (landing day {day}, run {run_id}, AUDOTICS_INGEST_VOLUME_GATE=fail)"
            + volume_outcome.docs_hint
        )
    return row
