"""Where a command's logs go. The console gets the command's own lines (stage lines, progress
bars, the report) and the warnings of the project's code; a log file per command, under
`<state>/logs`, gets everything at DEBUG: the project, the libraries (GX, py4j, dbt, Cosmos),
Python warnings, and what child processes such as Spark's JVM print.

`configure` is called once, by the `audotics` command; code that runs elsewhere (Airflow tasks,
tests, a notebook) keeps its host's logging, and `child_output_to_log` then does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

# The packages of this project: their warnings reach the console, the libraries' do not.
PROJECT_PACKAGES = (
    "audotics", "dashboards", "demo", "expectations", "feature_store", "ingestion",
    "orchestration", "serving", "spark_jobs", "warehouse",
)  # fmt: skip
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
KEEP_PER_COMMAND = 20  # older log files of a command are deleted

_log_file: Path | None = None


class _ProjectWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in PROJECT_PACKAGES


def configure(state_dir: Path, command: str, verbose: bool = False) -> Path:
    """Log to a new file `<state_dir>/logs/<command>-<UTC time>.log` (returned), and to the
    console: the project's warnings, or with `verbose` every record at DEBUG."""
    global _log_file
    folder = Path(state_dir) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob(f"{command}-*.log"))[: -KEEP_PER_COMMAND + 1]:
        old.unlink(missing_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S_%f")
    _log_file = folder / f"{command}-{stamp}.log"
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    if verbose:
        console.setLevel(logging.DEBUG)
    else:
        console.setLevel(logging.WARNING)
        console.addFilter(_ProjectWarnings())
    log_everything_to(_log_file, console)
    return _log_file


def log_everything_to(log_file: Path, *handlers: logging.Handler) -> None:
    """Every record at DEBUG, and Python's warnings, to `log_file` (appended to), beside
    `handlers`: for `configure`, and for a helper process writing to its command's log."""
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(FILE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [to_file, *handlers]
    root.setLevel(logging.DEBUG)
    logging.captureWarnings(True)  # Python warnings (deprecations) go to the file
    for chatty in ("py4j", "urllib3", "asyncio", "matplotlib", "PIL"):
        logging.getLogger(chatty).setLevel(logging.INFO)  # their DEBUG is per packet


def log_file() -> Path | None:
    """The log file `configure` opened in this process, if any."""
    return _log_file


@contextmanager
def child_output_to_log() -> Iterator[None]:
    """Child processes started inside (for example Spark's JVM) write their stdout and stderr
    to the log file for their whole life; this process's own streams are restored on exit."""
    if _log_file is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(_log_file, os.O_WRONLY | os.O_APPEND)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def exit_now(status: int = 0) -> NoReturn:
    """End the process with `status` once its output and logs are flushed, skipping the
    interpreter's teardown of the modules it loaded (a fifth of a second or more for Arrow,
    pandas, DuckDB, GX). Only for a process with nothing left to clean up at exit."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
