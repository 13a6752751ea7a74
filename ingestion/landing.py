"""The landing zone: where apps drop hourly gzipped JSON-lines files of events.

`<landing_root>/events/date=YYYY-MM-DD/*.jsonl.gz`. The `date=` folder is the day the files
arrived; that day is the ingestion interval (daily), whatever the events' own timestamps say.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from audotics.errors import AudoticsError
from audotics.settings import Settings

DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
HOUR_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})")
READ_CHUNK = 1 << 20


class LandingFileError(AudoticsError):
    """A landing file cannot be read at all (not gzip, truncated): the task fails naming it."""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    landing_date: dt.date

    @property
    def name(self) -> str:
        """The path as recorded in bronze: relative to the landing root, stable across hosts."""
        return f"events/date={self.landing_date.isoformat()}/{self.path.name}"


def arrival_hour_end(file_name: str, landing_date: dt.date) -> dt.datetime:
    """End of the hour a file covers (from its name), else the end of its landing day.
    No event in the file can be later than this (plus clock skew)."""
    match = HOUR_IN_NAME.search(file_name.rsplit("/", 1)[-1])
    if match:
        start = dt.datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}:00:00+00:00")
        return start + dt.timedelta(hours=1)
    return dt.datetime.combine(landing_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def events_root(settings: Settings) -> Path:
    return Path(settings.landing_root) / "events"


def day_folder(settings: Settings, day: dt.date) -> Path:
    return events_root(settings) / f"date={day.isoformat()}"


def landing_days(settings: Settings) -> list[dt.date]:
    """Every day that has a landing folder, oldest first."""
    root = events_root(settings)
    if not root.is_dir():
        return []
    days = (DAY_FOLDER.match(p.name) for p in root.iterdir() if p.is_dir())
    return sorted(dt.date.fromisoformat(m.group(1)) for m in days if m)


def landing_files(settings: Settings, day: dt.date) -> list[LandingFile]:
    """The files of one landing day, in name order (hour order)."""
    folder = day_folder(settings, day)
    if not folder.is_dir():
        return []
    return [LandingFile(path, day) for path in sorted(folder.glob("*.jsonl.gz"))]


def read_lines(file: LandingFile) -> list[bytes]:
    """Every line of the file as received (without the newline). An empty trailing line (the
    file ends with a newline) is not a record; a blank line inside the file is one."""
    try:
        data = gzip.decompress(file.path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise LandingFileError(f"cannot read landing file {file.path}: {exc}") from exc
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def count_records(file: LandingFile) -> int:
    """Count the records of a file by streaming its bytes: independent of `read_lines`, so
    the reconciliation compares two separate counts."""
    count, last = 0, b"\n"
    try:
        with gzip.open(file.path, "rb") as stream:
            while chunk := stream.read(READ_CHUNK):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError, zlib.error) as exc:
        raise LandingFileError(f"cannot read landing file {file.path}: {exc}") from exc
    return count + (last != b"\n")
