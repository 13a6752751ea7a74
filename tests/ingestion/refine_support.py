"""A tiny lake for the refine tests: a catalog of one user and one track, bronze lines of a
landing day written as `land_bronze` writes them, and the engine run over them. No PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from ingestion.engines import CANDIDATES, STAGED, DayCounts, engine_for
from ingestion.engines.duckdb_engine import DuckDBEngine

DAY = dt.date(2026, 11, 1)
TIMES = ("quarantined_at", "ingested_at")  # when a run processed a row: not the judgement
FILE = f"events/date={DAY}/events-{DAY}T10.jsonl.gz"  # its hour ends 11:00 (+10 min skew)
USER = "6f1c3d2a-9b8e-4c7d-a6f5-0e1d2c3b4a59"
TRACK = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
SIGNED_UP = dt.datetime(2026, 10, 30, tzinfo=dt.UTC)  # inside the day's lateness window
DURATION_MS = 200_000
GOOD = {
    "event_id": "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b", "event_type": "play", "user_id": USER,
    "track_id": TRACK, "ts": "2026-11-01T10:00:00.500+02:00", "ms_played": 1000,
    "context": "search", "playlist_id": None, "model_version": None, "experiment": None,
    "arm": None, "device": "ios",
    "country": "SE",
}  # fmt: skip


def line(**changes: object) -> bytes:
    """GOOD with `changes`; a value "<drop>" removes the field."""
    record = {k: v for k, v in {**GOOD, **changes}.items() if v != "<drop>"}
    return json.dumps(record).encode()


def write_catalog(settings: Settings) -> None:
    """silver/users and silver/tracks with one current row each (SCD2 columns)."""
    history = {"valid_from": SIGNED_UP, "valid_to": None, "is_current": True}
    for table, row in (
        (tables.SILVER_USERS, {"user_id": USER, "created_at": SIGNED_UP}),
        (tables.SILVER_TRACKS, {"track_id": TRACK, "duration_ms": DURATION_MS}),
    ):
        values = {name: row.get(name, history.get(name)) for name in table.schema.names}
        lake.write_arrow(settings, table, pa.Table.from_pylist([values], table.schema))


def land(
    settings: Settings,
    lines: list[bytes],
    day: dt.date = DAY,
    file: str = FILE,
    cut: dict[int, int] | None = None,
) -> None:
    """Replace the day's bronze rows with `lines` (line numbers from 1); `cut` gives the full
    length of lines bronze holds only the start of (line number -> bytes)."""
    now, cut = dt.datetime.now(dt.UTC), cut or {}
    rows = [
        {
            "source_file": file, "line_number": number, "raw": raw, "run_id": "test",
            "ingested_at": now, "landing_date": day, "raw_bytes": cut.get(number, len(raw)),
            "raw_sha256": "0" * 64 if number in cut else None,
        }
        for number, raw in enumerate(lines, 1)
    ]  # fmt: skip
    schema = tables.BRONZE_EVENTS.schema
    lake.write_arrow(
        settings, tables.BRONZE_EVENTS, pa.Table.from_pylist(rows, schema),
        mode="overwrite", predicate=f"landing_date = '{day}'",
    )  # fmt: skip


@dataclass
class Refined:
    quarantine: pa.Table
    candidates: pa.Table  # silver rows with their lines, duplicates included
    duplicates: pa.Table  # lines
    counts: DayCounts

    @property
    def silver(self) -> pa.Table:
        """The candidates that are not duplicates, as silver rows."""
        dropped = set(map(tuple, (d.values() for d in self.duplicates.to_pylist())))
        rows = [
            row for row in self.candidates.to_pylist()
            if (row["source_file"], row["line_number"]) not in dropped
        ]  # fmt: skip
        return pa.Table.from_pylist(rows, CANDIDATES).select(tables.SILVER_EVENTS.schema.names)

    def reasons(self) -> dict[int, list[str]]:
        """line_number -> reasons of each quarantined line."""
        rows = self.quarantine.select(["line_number", "reasons"]).to_pylist()
        return {row["line_number"]: row["reasons"] for row in rows}


def run_engine(
    settings: Settings, day: dt.date = DAY, batch_rows: int = 3, engine: str = "duckdb"
) -> Refined:
    """An engine's judgement of the day's bronze, as it staged it (the DuckDB
    engine in batches of `batch_rows`: small, so several)."""
    with tempfile.TemporaryDirectory() as folder:
        staging = Path(folder)
        if engine == "duckdb":
            judge = DuckDBEngine(settings, day, staging, batch_rows=batch_rows)
        else:
            judge = engine_for(
                settings.model_copy(update={"ingest_engine": engine}), day, staging, 0
            )
        with judge:
            counts = judge.judge("test")
            staged = {name: judge.staged(name).read_all() for name in STAGED}
        return Refined(staged["quarantine"], staged["candidates"], staged["duplicates"], counts)


def committed(settings) -> dict[str, list[str]]:
    """The rows of quarantine and silver, the processing timestamps left out."""
    rows = {}
    for table in (tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS):
        data = lake.read_arrow(settings, table)
        kept = [c for c in data.column_names if c not in TIMES]
        rows[table.name] = sorted(repr(sorted(r.items())) for r in data.select(kept).to_pylist())
    return rows
