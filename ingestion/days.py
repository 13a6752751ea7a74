"""One landing day end to end, as the DAG runs it task by task: catalog, bronze, refine,
reconcile. Used by the CLI and `audotics run`; the DAG calls the same steps one per task.

Each step replaces the day's slice of its tables and then records itself in the run row
(`ops/ingest_runs.steps_done`), so a run that dies says which step did not finish, and the
next run of the day redoes the day from its landing files."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack

from audotics import locks
from audotics.lake import tables
from audotics.progress import progress
from audotics.settings import Settings
from expectations.validation import build_data_docs, validation_process
from ingestion import bronze, catalog_extract, refine, runs
from ingestion.engines import Engine
from ingestion.landing import LandingFile, LandingFileError, landing_files

log = logging.getLogger(__name__)


def land_day(
    settings: Settings,
    day: dt.date,
    run_id: str,
    on_file: Callable[[LandingFile], None] | None = None,
) -> int:
    """Start the run row and land bronze; returns its rows. A refused landing file fails the
    run row, naming the file, and raises: nothing of the day is committed."""
    runs.start_run(settings, day, run_id)
    try:
        landed = bronze.land_bronze(settings, day, run_id, on_file)
    except LandingFileError as exc:
        runs.fail_run(settings, day, run_id, str(exc))
        raise
    runs.step_done(
        settings, day, run_id, "bronze",
        input_records=landed.input_records, bronze_rows=landed.bronze_rows,
    )  # fmt: skip
    return landed.bronze_rows


# Every landing day's refine judges duplicates against silver and then commits silver: one at a
# time, or two days sharing events would both commit them.
REFINE_LOCK = f"refine {tables.SILVER_EVENTS}"


def refine_events(
    settings: Settings, day: dt.date, run_id: str, engine: Engine | None = None
) -> refine.RefineResult:
    """Refine the day's bronze into silver and quarantine (with `engine`, if the caller opened
    one), and record the step; one day at a time across every process (`REFINE_LOCK`)."""
    purpose = f"refine of landing day {day}, run {run_id}"
    with locks.exclusive(settings, REFINE_LOCK, purpose=purpose):
        result = refine.refine_day(settings, day, run_id, engine)
    runs.step_done(
        settings, day, run_id, "refine",
        silver_rows=result.silver_rows, quarantine_rows=result.quarantine_rows,
        duplicate_rows=result.duplicate_rows,
        unknown_fields=json.dumps(result.unknown_fields, sort_keys=True),
    )  # fmt: skip
    return result


# Days after the one being refined whose bronze lands meanwhile. One: the next day lands and
# is judged beside this day's refine. Landing further ahead measured no faster at 1M events over
# 4 days (two: the same; three: slower), its work only competing with the first day's.
LAND_AHEAD = 1


# A day's lines are judged ahead only up to this many: a bigger day keeps both cores busy by
# itself, and a second engine's memory would then add to the day's peak.
JUDGE_AHEAD_MAX_LINES = 1_000_000


def _prepare(
    settings: Settings, day: dt.date, run_id: str, landed: Future
) -> tuple[ExitStack, Engine | None]:
    """Once the day's bronze has landed, its engine, prepared (`Engine.prepare`), and what
    closes it; no engine for a day over JUDGE_AHEAD_MAX_LINES."""
    if landed.result() > JUDGE_AHEAD_MAX_LINES:
        return ExitStack(), None
    log.debug("landing day %s: judging its lines ahead", day)
    with ExitStack() as resources:
        engine = resources.enter_context(refine.day_engine(settings, day))
        engine.prepare(run_id)
        return resources.pop_all(), engine


def _close_prepared(prepared: dict[dt.date, Future]) -> None:
    """Close the engines prepared ahead that were not used (waiting for those in progress)."""
    for future in prepared.values():
        if not future.cancel() and future.exception() is None:
            resources, _engine = future.result()
            resources.close()


def ingest(
    settings: Settings,
    days: list[dt.date],
    run_id: str,
    on_day: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Catalog first (events are checked against it), then each day (`on_day` sees each run
    row as it ends), then the Data Docs of these runs, also when a day failed.

    The next day's bronze (LAND_AHEAD days) lands while a day is refined, in a thread (the
    two share no table, and the lake writer and DuckDB work outside the GIL): both cores work.
    Each day's engine is prepared in another thread, in day order (up to JUDGE_AHEAD_MAX_LINES):
    the first day's once it has landed, each next day's while the day before is gated and
    committed, so only its duplicates wait for that day's silver. Two days are never judged
    side by side: on two cores that only slows the first day, which everything waits for.
    When the run stops at an error, a day landed ahead ends failed, saying it was not refined.
    The gates and the Data Docs run in a separate process (`validation_process`): GX never
    holds this one's GIL."""
    results: list[dict] = []
    ahead: dict[dt.date, Future] = {}
    prepared: dict[dt.date, Future] = {}
    files = sum(len(landing_files(settings, day)) for day in days)
    with (
        # GX loads there, beside the catalog extract and first bronze, and stores the suites.
        validation_process(settings, [refine.gate_suite(), *runs.row_suites(settings)]),
        progress("ingest", total=files, unit="file") as bar,
        ThreadPoolExecutor(1, thread_name_prefix="land-ahead") as lander,
        ThreadPoolExecutor(1, thread_name_prefix="judge-ahead") as judge,
    ):

        def land_ahead(index: int) -> None:
            if index < len(days):
                ahead[days[index]] = lander.submit(
                    land_day, settings, days[index], run_id, lambda _file: bar.update()
                )

        def prepare_ahead(index: int) -> None:
            if index < len(days):
                day = days[index]
                prepared[day] = judge.submit(_prepare, settings, day, run_id, ahead[day])

        for index in range(LAND_AHEAD):
            land_ahead(index)
        stage = "the catalog extract"
        try:
            catalog_extract.extract_catalog(settings, run_id)
            prepare_ahead(0)  # the engines read the catalog
            for number, day in enumerate(days, 1):
                log.info("ingesting landing day %s (%d of %d)", day, number, len(days))
                stage = f"landing day {day}"
                land_ahead(number - 1 + LAND_AHEAD)
                prepare_ahead(number)  # queued behind this day's, never beside it
                ahead.pop(day).result()  # raises the landing's error
                resources, engine = prepared.pop(day).result()
                with resources:
                    refine_events(settings, day, run_id, engine)
                results.append(runs.reconcile(settings, day, run_id))
                if on_day:
                    on_day(results[-1])
        except BaseException:
            for landed_day, landed in ahead.items():
                if not landed.cancel() and landed.exception() is None:  # waits for it
                    reason = f"bronze landed, not refined: the run stopped at {stage}"
                    runs.fail_run(settings, landed_day, run_id, reason)
            _close_prepared(prepared)  # after the landings: one cancelled ends its preparing
            raise
        finally:
            build_data_docs(settings, incremental=True)
    return results
