"""Parse raw event lines into typed columns. Pure: bytes in, a DataFrame and reasons out.

Structural problems (not JSON, a required field missing, a wrong type, an unreadable timestamp)
are found here, because no expectation can run on a record that has no columns. Everything
about values (vocabularies, ranges, catalog membership) is the quality suite's job.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pandas as pd

from expectations.validation import ROW_ID

REQUIRED: dict[str, type] = {
    "event_id": str,
    "event_type": str,
    "user_id": str,
    "track_id": str,
    "ts": str,
    "ms_played": int,
}
OPTIONAL: dict[str, type] = {
    "context": str,
    "playlist_id": str,
    "model_version": str,
    "device": str,
    "country": str,
}
FIELDS = (*REQUIRED, *OPTIONAL)


@dataclass
class ParsedBatch:
    events: pd.DataFrame  # one row per structurally valid record, with its _row_id
    failures: dict[int, list[str]] = field(default_factory=dict)  # _row_id -> reasons
    unknown_fields: Counter = field(default_factory=Counter)  # schema drift: field -> records


def _utc(value: str) -> dt.datetime | None:
    """An ISO-8601 timestamp in UTC (a naive one is taken as UTC); None if unreadable."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _wrong_types(values: list, kind: type, required: bool) -> list[tuple[int, str]]:
    """(position, problem) for each value that is missing (if required) or of another type.
    `type(v) is kind` so that true/false never pass as an int."""
    if required:
        return [
            (i, "missing_field:" if v is None else "wrong_type:")
            for i, v in enumerate(values)
            if type(v) is not kind
        ]
    return [
        (i, "wrong_type:") for i, v in enumerate(values) if v is not None and type(v) is not kind
    ]


def parse_events(lines: Sequence[bytes]) -> ParsedBatch:
    """Parse `lines` (row id = position). Timestamps become UTC; a naive one is taken as UTC."""
    batch = ParsedBatch(events=pd.DataFrame())
    records: list[dict] = []
    row_ids: list[int] = []
    for row_id, line in enumerate(lines):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            batch.failures[row_id] = ["malformed_json"]
            continue
        if type(record) is not dict:
            batch.failures[row_id] = ["not_a_json_object"]
            continue
        records.append(record)
        row_ids.append(row_id)

    # Column-wise from here: one comprehension per field is far cheaper than per-record work.
    columns = {name: [record.get(name) for record in records] for name in FIELDS}
    problems: dict[int, list[str]] = {}
    checks = [(n, k, True) for n, k in REQUIRED.items()] + [
        (n, k, False) for n, k in OPTIONAL.items()
    ]
    for name, kind, required in checks:
        for position, problem in _wrong_types(columns[name], kind, required):
            problems.setdefault(position, []).append(problem + name)
    known = set(FIELDS)
    for record in records:
        if not record.keys() <= known:
            batch.unknown_fields.update(record.keys() - known)

    events = pd.DataFrame(columns)
    events.insert(0, ROW_ID, pd.array(row_ids, dtype="int64"))
    if problems:
        for position, why in problems.items():
            batch.failures[row_ids[position]] = why
        events = events.drop(index=list(problems)).reset_index(drop=True)
    events["ms_played"] = events["ms_played"].astype("int64")
    # Per value: pandas' ISO parser misreads naive timestamps mixed with offset ones.
    events["ts"] = pd.Series([_utc(value) for value in events["ts"]], dtype="object")
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    unreadable = events["ts"].isna()
    for row_id in events.loc[unreadable, ROW_ID]:
        batch.failures[int(row_id)] = ["unreadable_ts"]
    batch.events = events.loc[~unreadable].reset_index(drop=True)
    batch.events["ts"] = batch.events["ts"].astype("datetime64[us, UTC]")
    return batch
