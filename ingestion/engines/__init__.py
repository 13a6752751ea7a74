"""The engines that refine one landing day of bronze into quarantine and silver, behind one
interface, all running the rules of `ingestion.rules`:

- `duckdb`: embedded DuckDB, in process, streaming the day in bounded batches;
- `spark`: the same rules as Spark SQL, for a day beyond one machine.

`AUDOTICS_INGEST_ENGINE` chooses: an engine's name, or `auto` (by the day's size).

An engine works in two steps, so that a gate can stand between them:
1. `judge(run_id)` judges every bronze row of the day and stages the outcome in `staging`, in
   the engine's own form, as three tables (`STAGED`): `quarantine` (tables.QUARANTINE_EVENTS),
   `candidates` (CANDIDATES: the rows with no reason, with their lines) and `duplicates` (LINES:
   the candidates `rules` point 5 leaves out of silver). It returns the day's `DayCounts`.
   `staged(name)` reads one back.
2. `commit(metadata)` replaces the day's quarantine and silver rows by the staged ones, each in
   one commit. Nothing is committed before it.

`prepare(run_id)` may come first: the part of judging that reads no silver events, which can
then run while the day before commits; `judge` does it if it was not done.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.settings import Settings

# A line of bronze, and a silver candidate with the line it came from.
LINES = pa.schema([tables.BRONZE_EVENTS.schema.field(name) for name in tables.BRONZE_EVENTS.keys])
CANDIDATES = pa.schema([*tables.SILVER_EVENTS.schema, *LINES])
STAGED = {
    "quarantine": tables.QUARANTINE_EVENTS.schema,
    "candidates": CANDIDATES,
    "duplicates": LINES,
}


class EngineError(AudoticsError):
    """An ingestion engine cannot be chosen, or its inputs break an invariant it relies on."""


@dataclass
class DayCounts:
    """What an engine counted over the day: for the gates, the run row and the Data Docs."""

    bronze_rows: int = 0
    quarantine_rows: int = 0
    # reason family (`rules.family`) -> quarantined rows with a reason of it
    reasons: Counter[str] = field(default_factory=Counter)
    unknown_fields: Counter[str] = field(default_factory=Counter)  # field -> JSON objects
    candidate_rows: int = 0
    duplicate_rows: int = 0  # candidates that are duplicates
    silver_event_ids: int = 0  # distinct event ids among the candidates that are not
    # Of the candidates (a superset of silver: duplicates are clean rows too), for the gates:
    silver_columns: list[str] = field(
        default_factory=lambda: list(tables.SILVER_EVENTS.schema.names)
    )
    silver_nulls: Counter[str] = field(default_factory=Counter)  # column -> null values
    silver_unknown_event_types: int = 0

    @property
    def silver_rows(self) -> int:
        return self.candidate_rows - self.duplicate_rows


class Engine(ABC):
    """One landing day through one engine; use as a context manager (it holds resources).
    `staging` is an empty folder the caller owns and removes."""

    name: str

    def __init__(self, settings: Settings, day: dt.date, staging: Path) -> None:
        self.settings, self.day, self.staging = settings, day, staging

    @abstractmethod
    def prepare(self, run_id: str) -> None:
        """Judge what needs no silver events (see the module)."""

    @abstractmethod
    def judge(self, run_id: str) -> DayCounts:
        """Judge every bronze row of the day and stage the outcome (see the module)."""

    @abstractmethod
    def staged(self, name: str) -> pa.RecordBatchReader:
        """The rows `judge` staged as `name` (a key of STAGED), typed as STAGED[name]."""

    @abstractmethod
    def commit(self, metadata: dict[str, str]) -> None:
        """Replace the day's quarantine and silver rows by the staged ones."""

    @abstractmethod
    def close(self) -> None:
        """Release what the engine holds (the staging folder excepted)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def engine_name(settings: Settings, day_lines: int) -> str:
    """The engine AUDOTICS_INGEST_ENGINE names; `auto`: Spark for a day of at least
    AUDOTICS_INGEST_SPARK_MIN_LINES lines, the embedded engine below."""
    name = settings.ingest_engine
    if name == "auto":
        return "spark" if day_lines >= settings.ingest_spark_min_lines else "duckdb"
    return name


def engine_for(settings: Settings, day: dt.date, staging: Path, day_lines: int) -> Engine:
    """The engine for landing day `day`, whose bronze holds `day_lines` lines."""
    if engine_name(settings, day_lines) == "spark":
        from ingestion.engines.spark_engine import SparkEngine  # loads Spark on first use

        return SparkEngine(settings, day, staging)
    from ingestion.engines.duckdb_engine import DuckDBEngine  # loads DuckDB on first use

    return DuckDBEngine(settings, day, staging)
