"""GDPR erasure in the stores this stage owns, where a user id sits inside a raw line rather than
in a column: the landing files, and the `raw_lines` tables of the catalog (bronze and
quarantine). `orchestration.gdpr` calls these as steps of one erasure request, then vacuums the
tables and records the request.

A line may hold any bytes (`ingestion.rules`): invalid UTF-8, NUL, JSON escapes. So lines are
matched as bytes, never decoded, by `user_pattern`: the id in any letter case, each character
either literal or as a JSON `\\uXXXX` escape, which is how a parser would still read the id
out of the line. Other users' lines are only scanned, never decoded or rewritten.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from ingestion.landing import LandingFileError, landing_days, landing_files

GDPR_COMMIT = {"erasure": "gdpr"}  # the metadata of every Delta commit an erasure makes
SCAN_LINES = 50_000  # lines matched per batch: memory follows the batch, not the file or table
SCAN_BYTES = 64 << 20  # a batch of landing lines also ends here
RAW_COLUMNS = ["landing_date", "source_file", "line_number", "raw"]


def user_pattern(user_id: str) -> str:
    """A regular expression (RE2 and PostgreSQL ARE alike) that finds `user_id` in a raw line:
    each character literal in either case or as a JSON escape (`\\u0061`, `\\u002D`)."""
    parts = []
    for char in user_id.lower():
        codes = {f"{ord(char):04x}", f"{ord(char.upper()):04x}"}
        escapes = "|".join(sorted({c for code in codes for c in (code, code.upper())}))
        literal = f"[{char}{char.upper()}]" if char.isalpha() else char
        parts.append(f"(?:{literal}|\\\\u(?:{escapes}))")
    return "".join(parts)


def _matching(lines: pa.Array, pattern: str) -> pa.Array:
    """A boolean mask of the lines (binary or text) that hold the pattern."""
    return pc.match_substring_regex(lines, pattern)


def _lines(path: Path) -> Iterator[list[bytes]]:
    """A gzipped landing file's lines in batches, each line's bytes kept exactly (newline too).
    A file that cannot be read is an error naming it: whether it holds the user is unknown."""
    try:
        with gzip.open(path, "rb") as stream:
            batch: list[bytes] = []
            size = 0
            for line in stream:
                batch.append(line)
                size += len(line)
                if len(batch) == SCAN_LINES or size >= SCAN_BYTES:
                    yield batch
                    batch, size = [], 0
            if batch:
                yield batch
    except (OSError, EOFError) as exc:  # not gzip, truncated, unreadable
        raise LandingFileError(
            f"landing file {path} cannot be read ({exc}): the erasure cannot tell whether it "
            "holds the user; repair or remove it, then rerun the erasure"
        ) from exc


def _kept(path: Path, pattern: str) -> Iterator[tuple[list[bytes], int]]:
    """Per batch: the lines not matching, and how many did."""
    for batch in _lines(path):
        mask = _matching(pa.array(batch, pa.binary()), pattern)
        hits = pc.sum(mask).as_py() or 0
        yield ([line for line, hit in zip(batch, mask.to_pylist(), strict=True) if not hit]
               if hits else batch), hits  # fmt: skip


def erase_landing(settings: Settings, user_id: str) -> int:
    """Remove every landing line that mentions `user_id`; returns how many were removed.

    Files are streamed (a batch of lines at a time); a file that holds such lines is rewritten
    to a temporary file and renamed over the old one, so a reader sees the old file or the new
    one, never half of either. A crash leaves at most a `.erasing` file, redone by the rerun.
    """
    pattern, removed = user_pattern(user_id), 0
    files = (f.path for day in landing_days(settings) for f in landing_files(settings, day))
    for path in files:
        if not any(hits for _, hits in _kept(path, pattern)):
            continue
        temporary = path.with_suffix(".erasing")
        # No file name or time in the gzip header: the rewrite holds nothing but the lines.
        with temporary.open("wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as out:
            for kept, hits in _kept(path, pattern):
                out.writelines(kept)
                removed += hits
        os.replace(temporary, path)
    return removed


def find_raw_lines(
    settings: Settings, table: tables.Table, user_id: str
) -> dict[tuple[dt.date, str], list[int]]:
    """The lines of a `raw_lines` table that mention `user_id`: (landing date, source file) ->
    line numbers. Empty if the table does not exist yet."""
    if not table.raw_lines:
        raise ValueError(f"{table} holds no raw lines: erase it by its user columns instead")
    if not lake.exists(settings, table):
        return {}
    pattern, found = user_pattern(user_id), {}
    scan = lake.dataset(settings, table).to_batches(columns=RAW_COLUMNS, batch_size=SCAN_LINES)
    for batch in scan:
        hits = batch.filter(_matching(batch.column("raw"), pattern))
        for hit in hits.select(RAW_COLUMNS[:3]).to_pylist():
            found.setdefault((hit["landing_date"], hit["source_file"]), []).append(
                hit["line_number"]
            )
    return found


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def delete_raw_lines(
    settings: Settings, table: tables.Table, lines: dict[tuple[dt.date, str], list[int]]
) -> int:
    """Delete the lines `find_raw_lines` found, in one commit; returns how many.

    Rows are deleted by (landing date, source file, line number), never by a predicate on the
    id: delta-rs writes a DELETE's predicate into the log, which must not hold the id. The
    commit carries `{"erasure": "gdpr"}`. The old files keep the rows until the table is
    vacuumed.
    """
    if not lines:
        return 0
    predicate = " OR ".join(
        f"(landing_date = '{day.isoformat()}' AND source_file = {_quoted(source)} "
        f"AND line_number IN ({', '.join(map(str, sorted(numbers)))}))"
        for (day, source), numbers in sorted(lines.items())
    )
    result = lake.delete_rows(settings, table, predicate, metadata=GDPR_COMMIT)
    return int(result.get("num_deleted_rows", 0))
