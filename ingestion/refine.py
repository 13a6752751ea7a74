"""Bronze to silver: parse, validate with the conformance suite, quarantine what fails with its
reasons, drop duplicates (within the day and against silver), gate, and commit.

Each output is replaced for the landing day in one commit (`landing_date = D`), so a rerun of
the day gives the same tables, and an event resent on another day is counted as a duplicate
whichever day is ingested first.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from expectations import events as event_suites
from expectations.validation import ROW_ID, validate
from ingestion import bronze
from ingestion.landing import arrival_hour_end
from ingestion.parse import ParsedBatch, parse_events

log = logging.getLogger(__name__)
# A play can run a little past the catalog's duration (crossfade, clock rounding).
MS_PLAYED_SLACK = 5_000


@dataclass(frozen=True)
class RefineResult:
    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    duplicate_rows: int
    unknown_fields: dict[str, int]


def with_checks(
    events: pd.DataFrame,
    source_files: pd.Series,
    users: pd.DataFrame,
    tracks: pd.DataFrame,
    settings: Settings,
    day: dt.date,
) -> pd.DataFrame:
    """Add the columns the conformance suite compares against (pure)."""
    skew = pd.Timedelta(minutes=settings.max_clock_skew_minutes)
    latest_allowed = {
        name: pd.Timestamp(arrival_hour_end(name, day)) + skew for name in source_files.unique()
    }
    checked = events.copy()
    files = source_files.iloc[checked[ROW_ID].to_numpy()]
    checked["max_ts"] = files.map(latest_allowed).astype("datetime64[us, UTC]").to_numpy()
    window_start = pd.Timestamp(day - dt.timedelta(days=settings.lateness_days), tz="UTC")
    checked["min_ts"] = pd.Series(window_start, index=checked.index).astype("datetime64[us, UTC]")
    checked["user_created_at"] = checked["user_id"].map(users.set_index("user_id")["created_at"])
    duration = checked["track_id"].map(tracks.set_index("track_id")["duration_ms"])
    checked["track_duration_ms"] = duration
    checked["max_ms_played"] = duration + MS_PLAYED_SLACK
    return checked


def first_occurrences(event_ids: pd.Series, known_ids: set[str]) -> np.ndarray:
    """Mask of the rows to keep: the first time an event_id is seen, and never a known one."""
    return (~event_ids.duplicated(keep="first") & ~event_ids.isin(known_ids)).to_numpy()


def _silver_window(day: dt.date, lateness_days: int) -> ds.Expression:
    """The silver partitions a landing day can write to."""
    start = day - dt.timedelta(days=lateness_days + 1)
    return (ds.field("event_date") >= start) & (ds.field("event_date") <= day + dt.timedelta(1))


def _ids_from_other_days(settings: Settings, day: dt.date) -> set[str]:
    if not lake.exists(settings, tables.SILVER_EVENTS):
        return set()
    window = _silver_window(day, settings.lateness_days) & (ds.field("landing_date") != day)
    ids = lake.read_arrow(settings, tables.SILVER_EVENTS, columns=["event_id"], filter=window)
    return set(ids.column("event_id").to_pylist())


def _quarantine_table(
    rows: pa.Table, reasons: dict[int, list[str]], run_id: str, day: dt.date
) -> pa.Table:
    picked = sorted(reasons)
    subset = rows.take(pa.array(picked, pa.int64())) if picked else rows.slice(0, 0)
    now = dt.datetime.now(dt.UTC)
    raw = [value.decode("utf-8", errors="replace") for value in subset.column("raw").to_pylist()]
    columns = {
        "source_file": subset.column("source_file"),
        "line_number": subset.column("line_number"),
        "raw": raw,
        "reasons": [reasons[i] for i in picked],
        "run_id": [run_id] * len(picked),
        "quarantined_at": [now] * len(picked),
        "landing_date": [day] * len(picked),
    }
    return pa.table(columns, schema=tables.QUARANTINE_EVENTS.schema)


def _silver_table(kept: pd.DataFrame, run_id: str, day: dt.date) -> pa.Table:
    schema = tables.SILVER_EVENTS.schema
    frame = kept[[name for name in schema.names if name in kept.columns]].copy()
    frame["ingested_at"] = pd.Timestamp.now(tz="UTC")
    frame["run_id"] = run_id
    frame["landing_date"] = day
    frame["event_date"] = frame["ts"].dt.date
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def refine_day(settings: Settings, day: dt.date, run_id: str) -> RefineResult:
    rows = bronze.read_day(settings, day)
    parsed: ParsedBatch = parse_events(rows.column("raw").to_pylist())
    reasons = {row: list(why) for row, why in parsed.failures.items()}
    if parsed.unknown_fields:
        log.warning(
            "schema drift in landing %s: unknown fields kept in bronze: %s",
            day,
            dict(parsed.unknown_fields),
        )

    batch_id = f"{day.isoformat()}__{run_id}"
    checked = with_checks(
        parsed.events,
        rows.column("source_file").to_pandas(),
        lake.read_current(settings, tables.SILVER_USERS, ["user_id", "created_at"]).to_pandas(),
        lake.read_current(settings, tables.SILVER_TRACKS, ["track_id", "duration_ms"]).to_pandas(),
        settings,
        day,
    )
    suite = event_suites.conformance(settings)
    # GX copies the frame for each metric: hand it only the columns the suite reads.
    checked = checked[[ROW_ID, *suite.columns_read()]]
    conformance = validate(settings, suite, checked, batch_id)
    conformance.raise_if_critical(str(tables.BRONZE_EVENTS))
    for row, why in conformance.reasons_by_row.items():
        reasons.setdefault(row, []).extend(why)

    clean = parsed.events[~parsed.events[ROW_ID].isin(reasons.keys())]
    keep = first_occurrences(clean["event_id"], _ids_from_other_days(settings, day))
    kept = clean[keep]
    silver = _silver_table(kept, run_id, day)
    gate = validate(settings, event_suites.silver_batch(), silver.to_pandas(), batch_id)
    gate.raise_if_critical(str(tables.SILVER_EVENTS))

    metadata = {"run_id": run_id, "interval": day.isoformat(), "step": "refine_events"}
    predicate = bronze.day_predicate(day)
    quarantine = _quarantine_table(rows, reasons, run_id, day)
    for table, rows_of_day in (
        (tables.QUARANTINE_EVENTS, quarantine),
        (tables.SILVER_EVENTS, silver),
    ):
        lake.write_arrow(
            settings, table, rows_of_day, mode="overwrite", predicate=predicate, metadata=metadata
        )

    window = lake.read_arrow(
        settings, tables.SILVER_EVENTS, columns=["event_id"],
        filter=_silver_window(day, settings.lateness_days),
    )  # fmt: skip
    unique = validate(settings, event_suites.silver_unique(), window.to_pandas(), batch_id)
    unique.raise_if_critical(str(tables.SILVER_EVENTS))

    result = RefineResult(
        bronze_rows=rows.num_rows,
        silver_rows=silver.num_rows,
        quarantine_rows=quarantine.num_rows,
        duplicate_rows=int((~keep).sum()),
        unknown_fields=dict(parsed.unknown_fields),
    )
    log.info("refined landing %s: %s", day, result)
    return result
