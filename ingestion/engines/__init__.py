"""The engines that refine one landing day of bronze into quarantine and silver rows, behind one
interface, all running the rules of `ingestion.rules`:

- `duckdb`: embedded DuckDB, in process, streaming the day in bounded batches;
- `spark`: (to come) the same rules as Spark SQL, for a day beyond one machine.

`AUDOTICS_INGEST_ENGINE` chooses: an engine's name, or `auto` (by the day's size: the embedded
engine until the Spark one is registered here).

An engine yields `RefinedBatch`es: the quarantine rows and the silver candidates (the rows with
no reason) of each batch, in any order; then `duplicates()` names the candidates' lines that
are duplicates (`rules`, point 5), which `refine.py` leaves out of silver. `counts` is complete
after `duplicates()`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.settings import Settings

# A line of bronze, and a silver candidate with the line it came from.
LINES = pa.schema([tables.BRONZE_EVENTS.schema.field(name) for name in tables.BRONZE_EVENTS.keys])
CANDIDATES = pa.schema([*tables.SILVER_EVENTS.schema, *LINES])


class EngineError(AudoticsError):
    """An ingestion engine cannot be chosen, or its inputs break an invariant it relies on."""


@dataclass(frozen=True)
class RefinedBatch:
    quarantine: pa.RecordBatch  # tables.QUARANTINE_EVENTS.schema
    silver: pa.RecordBatch  # CANDIDATES: silver rows, duplicates included, with their lines


@dataclass
class DayCounts:
    """What an engine counted over the day, for the run row and the Data Docs."""

    bronze_rows: int = 0
    # reason family (`rules.family`) -> quarantined rows with a reason of it
    reasons: Counter[str] = field(default_factory=Counter)
    unknown_fields: Counter[str] = field(default_factory=Counter)  # field -> JSON objects
    duplicate_rows: int = 0  # candidates that are duplicates
    silver_event_ids: int = 0  # distinct event ids among the candidates that are not


class Engine(ABC):
    """One landing day through one engine; use as a context manager (it holds resources)."""

    name: str

    def __init__(self, settings: Settings, day: dt.date) -> None:
        self.settings, self.day = settings, day
        self.counts = DayCounts()

    @abstractmethod
    def refine(self, run_id: str) -> Iterator[RefinedBatch]:
        """Every bronze row of the day, judged, batch by batch."""

    @abstractmethod
    def duplicates(self) -> pa.Table:
        """After `refine`: the LINES of the candidates that are duplicates: not the first of
        their event id within the day, or of an event id silver holds from another landing day
        whose rows can share the day's partitions (`rules.silver_window`)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the engine holds."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def engine_name(settings: Settings) -> str:
    """The engine AUDOTICS_INGEST_ENGINE names; `auto` is the embedded one until Spark lands."""
    name = settings.ingest_engine
    return "duckdb" if name == "auto" else name


def engine_for(settings: Settings, day: dt.date) -> Engine:
    if engine_name(settings) == "spark":
        raise EngineError(
            "AUDOTICS_INGEST_ENGINE=spark: the Spark ingestion engine is not available yet; "
            "use auto or duckdb"
        )
    from ingestion.engines.duckdb_engine import DuckDBEngine  # loads DuckDB on first use

    return DuckDBEngine(settings, day)
