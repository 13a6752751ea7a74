"""Missing data never looks healthy, and a day is atomic: the run row in ops/ingest_runs is
written first as `running`, updated after each step, and ends `success`, `warning` or `failed`
with a reason. A day with no files, or with too few records against the trailing average, is
flagged in the row, the CLI's exit code and the Airflow run. On real Delta tables, a real
PostgreSQL and `airflow dags test`."""

from __future__ import annotations

import datetime as dt
import gzip
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from audotics import lake
from audotics.lake import tables
from demo.world.generate import generate_world
from expectations.validation import QualityGateError
from ingestion import runs
from ingestion.days import ingest, land_day
from ingestion.landing import day_folder
from ingestion.runs import IngestRunError, run_row, volume_expected


@pytest.fixture(scope="module")
def world(isolated_platform):
    settings = isolated_platform(
        "volume", world_users=60, world_artists=10, world_tracks=120, world_days=2,
        world_events_per_day=400, world_bad_record_rate=0.05,
    )  # fmt: skip
    manifest = generate_world(settings, progress=False)
    return settings, manifest


def rows_of(settings, day: dt.date) -> dict[str, dict]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    found = lake.read_arrow(
        settings, tables.INGEST_RUNS, filter=ds.field("interval_start") == start
    )
    return {row["run_id"]: row for row in found.to_pylist()}


def landing_file(settings, day: dt.date) -> Path:
    """A new landing file of the day (its folder created)."""
    folder = day_folder(settings, day)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"events-{day}T00.jsonl.gz"


def some_lines(settings, day: dt.date, count: int) -> bytes:
    """The first lines of a generated day."""
    first = sorted(day_folder(settings, day).glob("*.jsonl.gz"))[0]
    return b"".join(
        line + b"\n" for line in gzip.decompress(first.read_bytes()).split(b"\n")[:count]
    )


# --- the expected volume, pure ----------------------------------------------------------------


def run(day: int, status: str, records: int, finished_hour: int | None = 1) -> dict:
    start = dt.datetime(2026, 11, day, tzinfo=dt.UTC)
    finished = start + dt.timedelta(hours=finished_hour) if finished_hour is not None else None
    return {
        "interval_start": start,
        "status": status,
        "input_records": records,
        "finished_at": finished,
    }


def test_the_trailing_average_is_over_the_latest_finished_run_of_earlier_successful_days():
    history = [
        run(1, "success", 1_000),
        run(2, "success", 100),  # rerun below: the latest run of day 2 is a warning
        run(2, "warning", 10, finished_hour=2),
        run(3, "success", 2_000),
        run(4, "success", 3_000, finished_hour=None),  # still running: not finished
        run(4, "success", 4_000),
        run(5, "success", 999_999),  # the day itself and later days never count
    ]
    volume = volume_expected(history, dt.date(2026, 11, 5), share=0.5, trailing_days=2)
    assert volume.trailing_days == (dt.date(2026, 11, 4), dt.date(2026, 11, 3))
    assert volume.trailing_average == 3_000
    assert volume.min_records == 1_500
    wider = volume_expected(history, dt.date(2026, 11, 5), share=0.5, trailing_days=7)
    assert wider.trailing_average == (1_000 + 2_000 + 4_000) / 3
    alone = volume_expected([], dt.date(2026, 11, 5), share=0.5, trailing_days=7)
    assert (alone.min_records, alone.trailing_average) == (1, None)  # still needs a record


# --- on the platform --------------------------------------------------------------------------


def test_no_files_and_a_0_byte_file_are_warnings_in_the_cli_and_the_run_row(world, env_for):
    settings, manifest = world
    start = min(dt.date.fromisoformat(day) for day in manifest.days)
    no_files, empty_file = start - dt.timedelta(days=20), start - dt.timedelta(days=19)
    landing_file(settings, empty_file).write_bytes(b"")

    result = subprocess.run(
        ["audotics", "ingest", "--date", str(no_files), "--to", str(empty_file)],
        env=env_for(settings), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert (
        f"{no_files}: 0 in, 0 silver, 0 quarantined, 0 duplicates, warning: volume gate: no "
        f"landing files in {day_folder(settings, no_files)}" in lines
    )
    assert any(
        line.startswith(f"{empty_file}: 0 in")
        and "warning: volume gate: 0 records in 1 landing" in line
        for line in lines
    ), lines
    for day in (no_files, empty_file):
        [row] = rows_of(settings, day).values()
        assert row["status"] == "warning" and row["status_reason"].startswith("volume gate: ")
        assert row["steps_done"] == ["bronze", "refine"]
        assert row["input_records"] == row["bronze_rows"] == 0


def test_a_day_under_the_share_of_the_trailing_average_warns_or_fails(world) -> None:
    settings, manifest = world
    days = [dt.date.fromisoformat(day) for day in sorted(manifest.days)]
    for result in ingest(settings, days, run_id="history"):
        assert result["status"] == "success", result
    low_day = days[-1] + dt.timedelta(days=1)
    landing_file(settings, low_day).write_bytes(gzip.compress(some_lines(settings, days[0], 10)))
    average = sum(manifest.days[str(day)].lines for day in days) / len(days)

    [warned] = ingest(settings, [low_day], run_id="low-warn")
    assert warned["status"] == "warning"
    assert warned["input_records"] == warned["bronze_rows"] == 10
    assert f"trailing average {average:,.0f} of 2 successful days" in warned["status_reason"]

    failing = settings.model_copy(update={"ingest_volume_gate": "fail"})
    after = low_day + dt.timedelta(days=1)  # lands while the low day is refined
    landing_file(settings, after).write_bytes(gzip.compress(some_lines(settings, days[0], 10)))
    with pytest.raises(QualityGateError, match="volume gate: 10 records"):
        ingest(failing, [low_day, after], run_id="low-fail")
    failed = rows_of(settings, low_day)["low-fail"]
    assert failed["status"] == "failed" and "trailing average" in failed["status_reason"]
    # The day landed ahead is not refined: its row ends failed, naming the day that stopped it.
    ahead = rows_of(settings, after)["low-fail"]
    assert (ahead["status"], ahead["steps_done"]) == ("failed", ["bronze"])
    assert ahead["status_reason"] == (
        f"bronze landed, not refined: the run stopped at landing day {low_day}"
    )
    silver = lake.read_arrow(
        settings, tables.SILVER_EVENTS, filter=ds.field("landing_date") == after
    )
    assert silver.num_rows == 0
    # A flagged day is not history: the next day is compared with the successful ones only.
    assert runs.volume_expected(
        lake.read_arrow(settings, tables.INGEST_RUNS).to_pylist(), low_day + dt.timedelta(1),
        settings.ingest_min_volume_share, settings.ingest_volume_trailing_days,
    ).trailing_average == average  # fmt: skip


def test_a_crash_between_bronze_and_refine_leaves_a_running_row_the_rerun_repairs(world):
    settings, manifest = world
    day = dt.date.fromisoformat(sorted(manifest.days)[0])
    land_day(settings, day, "crashed")  # then the process dies before refine
    crashed = run_row(settings, day, "crashed")
    assert (crashed["status"], crashed["steps_done"]) == ("running", ["bronze"])
    assert crashed["input_records"] == crashed["bronze_rows"] == manifest.days[str(day)].lines
    assert crashed["finished_at"] is None
    with pytest.raises(IngestRunError, match="has not finished refine"):
        runs.reconcile(settings, day, "crashed")

    [repaired] = ingest(settings, [day], run_id="repair")
    assert repaired["status"] == "success" and repaired["steps_done"] == ["bronze", "refine"]
    assert repaired["silver_rows"] == manifest.days[str(day)].valid_events
    crashed = rows_of(settings, day)["crashed"]
    assert crashed["status"] == "failed"
    assert crashed["status_reason"] == "interrupted after bronze: run repair redid the day"
    bronze_runs = lake.read_arrow(
        settings, tables.BRONZE_EVENTS, columns=["run_id"], filter=ds.field("landing_date") == day
    ).column("run_id")
    assert set(bronze_runs.to_pylist()) == {"repair"}


def test_airflow_shows_a_warning_day_as_a_failed_volume_gate(world, env_for, airflow_home):
    settings, manifest = world
    day = max(dt.date.fromisoformat(d) for d in manifest.days) + dt.timedelta(days=10)
    result = subprocess.run(
        ["airflow", "dags", "test", "ingest_events", str(day)],
        env={**env_for(settings), **airflow_home}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = result.stdout + result.stderr
    [finished] = [line for line in output.splitlines() if "DagRun Finished" in line]
    assert "state=failed" in finished, output[-4000:]
    # The tables are published (reconcile succeeded); the verdict is the volume_gate task's.
    assert "FAILED ingest_events.volume_gate" in output and "no landing files in" in output
    assert "FAILED ingest_events.reconcile" not in output
    [row] = rows_of(settings, day).values()
    assert row["status"] == "warning" and row["run_id"].startswith("manual__")
