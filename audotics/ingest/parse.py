"""Parse raw event lines into typed columns. Pure: bytes in, a DataFrame and reasons out.

Structural problems (not JSON, a required field missing, a wrong type, an unreadable timestamp)
are found here, because no expectation can run on a record that has no columns. Everything
about values (vocabularies, ranges, catalog membership) is the quality suite's job.
"""

from __future__ import annotations

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


def _problems(record: dict) -> list[str]:
    problems = []
    for name, kind in REQUIRED.items():
        value = record.get(name)
        if value is None:
            problems.append(f"missing_field:{name}")
        elif type(value) is not kind:  # `type is` so that true/false never pass as an int
            problems.append(f"wrong_type:{name}")
    for name, kind in OPTIONAL.items():
        value = record.get(name)
        if value is not None and type(value) is not kind:
            problems.append(f"wrong_type:{name}")
    return problems


def parse_events(lines: Sequence[bytes]) -> ParsedBatch:
    """Parse `lines` (row id = position). Timestamps become UTC; a naive one is taken as UTC."""
    columns: dict[str, list] = {name: [] for name in FIELDS}
    row_ids: list[int] = []
    batch = ParsedBatch(events=pd.DataFrame())
    for row_id, line in enumerate(lines):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            batch.failures[row_id] = ["malformed_json"]
            continue
        if not isinstance(record, dict):
            batch.failures[row_id] = ["not_a_json_object"]
            continue
        problems = _problems(record)
        if problems:
            batch.failures[row_id] = problems
            continue
        if len(record) > len(FIELDS) or not record.keys() <= columns.keys():
            batch.unknown_fields.update(record.keys() - columns.keys())
        row_ids.append(row_id)
        for name, values in columns.items():
            values.append(record.get(name))

    events = pd.DataFrame(columns)
    events.insert(0, ROW_ID, pd.array(row_ids, dtype="int64"))
    events["ms_played"] = events["ms_played"].astype("int64")
    events["ts"] = pd.to_datetime(events["ts"], utc=True, format="ISO8601", errors="coerce")
    unreadable = events["ts"].isna()
    for row_id in events.loc[unreadable, ROW_ID]:
        batch.failures[int(row_id)] = ["unreadable_ts"]
    batch.events = events.loc[~unreadable].reset_index(drop=True)
    batch.events["ts"] = batch.events["ts"].astype("datetime64[us, UTC]")
    return batch
