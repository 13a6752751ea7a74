"""The landing folder's event files: where each hour's file goes, removing an old world's files,
and writing gzip on a background thread.

Files are written under a temporary name and renamed when complete, so a reader never sees
half a file. The gzip header carries no time or name, so the same lines give the same bytes."""

from __future__ import annotations

import datetime as dt
import gzip
import queue
import threading
from pathlib import Path

from audotics.settings import Settings
from demo.world.errors import WorldError
from demo.world.manifest import manifest_path

# Level 1 compresses 2-3x faster than the default 6 for files ~10% bigger: generation is
# bounded by compression, and the files are scratch data.
GZIP_LEVEL = 1
EVENT_FILE_GLOB = "date=*/events-*.jsonl.gz"


def events_root(settings: Settings) -> Path:
    root = settings.landing_root
    if "://" in root:
        raise WorldError(
            f"landing_uri {root!r} is not a local folder: `audotics generate` writes local "
            "files only"
        )
    return Path(root) / "events"


def hour_file(hour_start: dt.datetime) -> str:
    """The path of an hour's file under the events folder."""
    day = hour_start.date().isoformat()
    return f"date={day}/events-{day}T{hour_start:%H}.jsonl.gz"


def generated_files(events: Path) -> list[Path]:
    """Everything a generated world consists of in the landing folder."""
    files = sorted(events.glob(EVENT_FILE_GLOB))
    return [*files, manifest_path(events)] if manifest_path(events).exists() else files


def remove_world(events: Path) -> None:
    """Remove a generated world's files (and then-empty date folders), nothing else."""
    for path in generated_files(events):
        path.unlink()
    for folder in events.glob("date=*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


class BackgroundGzipWriter:
    """Compresses and writes files on one background thread, so generation and compression run
    on two cores. The queue is short: memory stays bounded by a few chunks."""

    def __init__(self, root: Path, queue_chunks: int = 3) -> None:
        self.root = root
        self.compressed_bytes = 0
        self._tasks: queue.Queue[tuple[str, bytes, bool] | None] = queue.Queue(queue_chunks)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gzip-writer", daemon=True)
        self._thread.start()

    def write(self, relative_path: str, data: bytes, *, last: bool) -> None:
        """Append `data` to the file being written; `last` completes it. One file at a time."""
        self._raise_error()
        self._tasks.put((relative_path, data, last))

    def close(self) -> None:
        """Wait until every file is written; raise what went wrong on the way."""
        self._tasks.put(None)
        self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise WorldError(f"writing event files under {self.root} failed: {self._error}")

    def _run(self) -> None:
        target = temporary = raw = compressed = None
        while (task := self._tasks.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the producer never blocks
            relative_path, data, last = task
            try:
                if raw is None:
                    target = self.root / relative_path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    temporary = target.with_name(f".{target.name}.tmp")
                    raw = temporary.open("wb")
                    compressed = gzip.GzipFile(
                        filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
                    )
                compressed.write(data)
                if last:
                    compressed.close()
                    raw.close()
                    self.compressed_bytes += temporary.stat().st_size
                    temporary.replace(target)
                    raw = None
            except OSError as exc:
                self._error = exc
        if raw is not None:
            raw.close()
