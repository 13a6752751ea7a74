"""GDPR erasure in the stores this stage owns, where a user id sits inside a raw line rather than
in a column: the landing files, and the `raw_lines` tables of the catalog (bronze and
quarantine). `orchestration.gdpr` calls these as part of one erasure request, then vacuums the
tables touched and records the request.
"""

from __future__ import annotations

import gzip
import os

import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from ingestion.landing import landing_days, landing_files


def erase_landing(settings: Settings, user_id: str) -> int:
    """Remove every landing line that mentions `user_id`; returns how many were removed.

    A file that holds such lines is rewritten to a temporary file and renamed over the old one,
    so a reader sees the old file or the new one, never half of either.
    """
    needle, removed = user_id.encode(), 0
    files = (f.path for day in landing_days(settings) for f in landing_files(settings, day))
    for path in files:
        lines = gzip.decompress(path.read_bytes()).split(b"\n")
        kept = [line for line in lines if needle not in line]
        if len(kept) < len(lines):
            removed += len(lines) - len(kept)
            temporary = path.with_suffix(".erasing")
            temporary.write_bytes(gzip.compress(b"\n".join(kept)))
            os.replace(temporary, path)
    return removed


def erase_raw_lines(settings: Settings, table: tables.Table, user_id: str) -> int:
    """Delete the rows of a `raw_lines` table (bronze or quarantine events) whose raw line
    mentions `user_id`; returns how many were deleted, 0 if the table does not exist yet.

    Rows are deleted by `(source_file, line_number)`, never by a predicate on the id: delta-rs
    writes a DELETE's predicate into the log, which must not hold the id. The commits carry
    `{"erasure": "gdpr"}`. The old files keep the rows until the caller vacuums the table.
    """
    if not table.raw_lines:
        raise ValueError(f"{table} holds no raw lines: erase it by its user columns instead")
    if not lake.exists(settings, table):
        return 0
    rows = lake.read_arrow(settings, table, columns=["source_file", "line_number", "raw"])
    raw = rows.column("raw")
    if pa.types.is_binary(raw.type):
        raw = raw.cast(pa.string())  # bronze keeps the bytes as received; the id is ASCII
    hits = rows.filter(pc.match_substring(raw, user_id)).select(["source_file", "line_number"])
    by_file: dict[str, list[int]] = {}
    for hit in hits.to_pylist():
        by_file.setdefault(hit["source_file"], []).append(hit["line_number"])
    for source_file, numbers in by_file.items():
        quoted = source_file.replace("'", "''")
        lake.delete_rows(
            settings, table,
            f"source_file = '{quoted}' AND line_number IN ({', '.join(map(str, numbers))})",
            metadata={"erasure": "gdpr"},
        )  # fmt: skip
    return hits.num_rows
