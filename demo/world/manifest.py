"""`<landing_root>/events/_world.json`: what a generated world contains, counted while writing
it. Later stages and tests use it as ground truth (lines per file, valid events, bad records per
kind)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from demo.world.bad_records import BAD_KINDS
from demo.world.errors import WorldError
from demo.world.vocab import EVENT_TYPES

MANIFEST_NAME = "_world.json"


@dataclass
class Counts:
    """Lines of a file, a day or the world, and what they are."""

    lines: int = 0
    valid_events: int = 0  # good events (on time or late), each once
    late_events: int = 0  # valid events whose ts is before their file's hour
    bad_records: int = 0
    event_types: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    bad_kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD_KINDS, 0))

    def add(self, other: Counts) -> None:
        self.lines += other.lines
        self.valid_events += other.valid_events
        self.late_events += other.late_events
        self.bad_records += other.bad_records
        for name, value in other.event_types.items():
            self.event_types[name] += value
        for name, value in other.bad_kinds.items():
            self.bad_kinds[name] += value

    @classmethod
    def total(cls, parts: list[Counts]) -> Counts:
        total = cls()
        for part in parts:
            total.add(part)
        return total


@dataclass(frozen=True)
class WorldManifest:
    seed: int
    settings: dict[str, Any]  # the settings the world was generated with, by name
    catalog: dict[str, int]  # rows per app table
    files: dict[str, int]  # path under <landing_root>/events -> lines
    days: dict[str, Counts]  # arrival date (the file's date) -> counts
    valid_events_by_event_date: dict[str, int]  # UTC date of ts -> valid events
    json_bytes: int  # size of all event files: uncompressed
    gzip_bytes: int  # and as written
    generated_at: str
    seconds: dict[str, float]  # wall time per phase
    experiment: dict[str, Any] | None = None  # the A/B experiment run (experiment.as_dict)

    @property
    def totals(self) -> Counts:
        return Counts.total(list(self.days.values()))

    def to_json(self) -> bytes:
        document = asdict(self)
        document["totals"] = asdict(self.totals)  # for people reading the file
        return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> WorldManifest:
        document = orjson.loads(data)
        document.pop("totals", None)
        document["days"] = {day: Counts(**c) for day, c in document["days"].items()}
        return cls(**document)


def manifest_path(events_root: Path) -> Path:
    return events_root / MANIFEST_NAME


def read_manifest(events_root: Path) -> WorldManifest:
    path = manifest_path(events_root)
    try:
        return WorldManifest.from_json(path.read_bytes())
    except FileNotFoundError:
        raise WorldError(f"no generated world at {events_root}: run `audotics generate`") from None
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise WorldError(f"{path} is not a world manifest: {exc}") from exc
