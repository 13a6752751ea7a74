"""Ingestion on a generated world with every kind of bad record, on real Delta tables and a real
PostgreSQL: reconciliation, idempotence, crash safety, schema drift, clear errors, SCD2."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

import ingestion.days
from audotics import db, lake
from audotics.lake import tables
from demo.world.generate import generate_world
from ingestion.catalog_extract import CatalogError, extract_catalog
from ingestion.days import ingest
from ingestion.landing import landing_days
from tests.support import stderr_on_a_terminal

RUN_COLUMNS = ("run_id", "ingested_at", "quarantined_at")
# The generator's bad-record kinds and the quarantine reasons they must produce.
EXPECTED_REASON = {
    "malformed_json": "malformed_json",
    "missing_field": "missing_field:",
    "unknown_user": "unknown_user_id",
    "unknown_track": "unknown_track_id",
    "ts_future": "ts_in_future",
    "ts_before_launch": "ts_before_service_launch",
    "unknown_event_type": "unknown_event_type",
}


@pytest.fixture(scope="module")
def world(isolated_platform):
    settings = isolated_platform(
        "ingest", world_users=150, world_artists=20, world_tracks=300, world_days=2,
        world_events_per_day=2_500, world_bad_record_rate=0.06,
    )  # fmt: skip
    manifest = generate_world(settings, progress=False)
    return settings, manifest


def snapshot(settings, table: tables.Table) -> list[dict]:
    """A table's rows without per-run metadata, in a stable order."""
    rows = lake.read_arrow(settings, table)
    rows = rows.drop_columns([c for c in RUN_COLUMNS if c in rows.column_names])
    keys = [c for c in ("event_id", "source_file", "line_number") if c in rows.column_names]
    return rows.sort_by([(k, "ascending") for k in keys]).to_pylist()


def test_reconciliation_matches_the_generated_ground_truth(world) -> None:
    settings, manifest = world
    days = landing_days(settings)
    assert [d.isoformat() for d in days] == sorted(manifest.days)

    runs = ingest(settings, days, run_id="reconcile")

    for run in runs:
        truth = manifest.days[run["interval_start"].date().isoformat()]
        assert run["status"] == "success"
        assert run["input_records"] == truth.lines == run["bronze_rows"]
        assert run["silver_rows"] == truth.valid_events
        assert run["quarantine_rows"] + run["duplicate_rows"] == truth.bad_records
        assert run["duplicate_rows"] == truth.bad_kinds["duplicate_event_id"]
        assert run["input_records"] == (
            run["silver_rows"] + run["quarantine_rows"] + run["duplicate_rows"]
        )

    reasons = lake.read_arrow(settings, tables.QUARANTINE_EVENTS).column("reasons").to_pylist()
    flat = [reason for row in reasons for reason in row]
    for kind, reason in EXPECTED_REASON.items():
        made = sum(day.bad_kinds[kind] for day in manifest.days.values())
        found = sum(1 for row in reasons if any(r.startswith(reason) for r in row))
        assert made > 0, f"the world should inject {kind}"
        assert found >= made, f"{kind}: {made} injected, {found} quarantined as {reason}"
    assert any(r.startswith("wrong_type:") or r == "unreadable_ts" for r in flat)

    silver = lake.read_arrow(settings, tables.SILVER_EVENTS)
    assert pc.count_distinct(silver.column("event_id")).as_py() == silver.num_rows
    by_date = silver.group_by("event_date").aggregate([("event_id", "count")]).to_pylist()
    assert {r["event_date"].isoformat(): r["event_id_count"] for r in by_date} == {
        date: count for date, count in manifest.valid_events_by_event_date.items() if count
    }
    docs = settings.state_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (docs / "index.html").exists()


def test_rerunning_an_interval_three_times_gives_the_same_tables(world) -> None:
    settings, manifest = world
    day = landing_days(settings)[0]
    refined = [tables.BRONZE_EVENTS, tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS]
    ingest(settings, [day], run_id="first")
    before = {t: snapshot(settings, t) for t in refined}
    versions = {t: lake.version(settings, t) for t in refined}
    for attempt in ("second", "third"):
        ingest(settings, [day], run_id=attempt)
    for table in refined:
        assert snapshot(settings, table) == before[table], table
        assert lake.version(settings, table) == versions[table] + 2  # one commit per run
    runs = lake.read_arrow(settings, tables.INGEST_RUNS).to_pylist()
    assert {r["run_id"] for r in runs} >= {"first", "second", "third"}
    third = [r for r in runs if r["run_id"] == "third"]
    assert len(third) == 1 and third[0]["silver_rows"] == manifest.days[str(day)].valid_events


def test_the_next_day_judged_ahead_or_in_turn_gives_the_same_tables(
    world, monkeypatch, caplog
) -> None:
    """Each day's lines are judged ahead in a thread, the next day's while a day commits (up to
    JUDGE_AHEAD_MAX_LINES), and each day in turn above it: the same tables either way."""
    settings, _manifest = world
    days = landing_days(settings)
    assert len(days) == 2
    refined = [tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS]
    ahead_line = f"landing day {days[1]}: judging its lines ahead"
    with caplog.at_level(logging.DEBUG, logger="ingestion.days"):
        ingest(settings, days, run_id="ahead")
    assert ahead_line in caplog.messages
    judged_ahead = {t: snapshot(settings, t) for t in refined}
    caplog.clear()
    monkeypatch.setattr(ingestion.days, "JUDGE_AHEAD_MAX_LINES", 0)
    with caplog.at_level(logging.DEBUG, logger="ingestion.days"):
        ingest(settings, days, run_id="in-turn")
    assert ahead_line not in caplog.messages
    assert {t: snapshot(settings, t) for t in refined} == judged_ahead


def test_a_silver_table_from_before_the_experiment_columns_gains_them(world) -> None:
    """A lake written before events carried `experiment` and `arm`: the next day's refine adds
    the two columns, and the older days keep every row (null in them)."""
    settings, manifest = world
    first, last = landing_days(settings)
    ingest(settings, [first, last], run_id="before-upgrade")
    old = lake.read_arrow(settings, tables.SILVER_EVENTS).drop_columns(["experiment", "arm"])
    lake.write_arrow(settings, tables.SILVER_EVENTS, old, mode="overwrite", schema_mode="overwrite")

    ingest(settings, [last], run_id="after-upgrade")
    silver = lake.read_arrow(settings, tables.SILVER_EVENTS)
    assert silver.num_rows == old.num_rows
    on_first = silver.filter(pc.field("landing_date") == first)
    assert on_first["experiment"].null_count == on_first.num_rows
    on_last = silver.filter(pc.field("landing_date") == last)
    assert set(on_last["experiment"].drop_null().to_pylist()) == {
        manifest.experiment["experiment_id"]}  # fmt: skip


def test_backfill_over_a_date_range_with_the_cli(world, env_for) -> None:
    settings, manifest = world
    days = landing_days(settings)
    result = subprocess.run(
        ["audotics", "ingest", "--date", str(days[0]), "--to", str(days[-1])],
        env=env_for(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.endswith("success")]
    assert [line.split(":")[0] for line in lines] == [str(d) for d in days]
    assert f"{manifest.days[str(days[0])].lines} in" in lines[0]


def test_on_a_terminal_the_cli_draws_a_progress_bar_over_the_landing_files(world, env_for):
    settings, manifest = world
    day = landing_days(settings)[0]
    drawn = stderr_on_a_terminal(["audotics", "ingest", "--date", str(day)], env_for(settings))
    files = sum(1 for name in manifest.files if f"date={day}" in name)
    # Drawn over the day's files, then cleared: the per-day line is what stays.
    assert b"ingest:" in drawn and f"/{files} [".encode() in drawn, drawn[-500:]
    assert drawn.rstrip(b" ").endswith(b"\r"), drawn[-500:]


def test_a_writer_killed_mid_run_leaves_tables_readable_and_the_rerun_completes_once(
    world, env_for
) -> None:
    settings, _ = world
    day = landing_days(settings)[-1]
    ingest(settings, [day], run_id="reference")
    reference = snapshot(settings, tables.SILVER_EVENTS)
    env = env_for(settings)
    helpers_seen = 0
    for delay in (2.0, 3.0, 4.0, 5.5):
        process = subprocess.Popen(
            ["audotics", "ingest", "--date", str(day)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(delay)
        helpers = psutil.Process(process.pid).children(recursive=True)  # the validation process
        helpers_seen += len(helpers)
        process.send_signal(signal.SIGKILL)
        process.wait()
        _, alive = psutil.wait_procs(helpers, timeout=10)
        assert not alive, f"outlived the killed ingest: {alive}"
        for table in (tables.BRONZE_EVENTS, tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS):
            lake.read_arrow(settings, table)  # every table stays readable
    assert helpers_seen
    # A writer that died after writing its files but before committing: files, no log entry.
    silver_dir = Path(lake.table_uri(settings, tables.SILVER_EVENTS)) / f"event_date={day}"
    orphan = silver_dir / "part-orphan-from-a-killed-writer.parquet"
    some_file = next(silver_dir.glob("*.parquet"))
    orphan.write_bytes(some_file.read_bytes())
    assert snapshot(settings, tables.SILVER_EVENTS) == reference  # invisible: never committed

    ingest(settings, [day], run_id="after-crash")
    assert snapshot(settings, tables.SILVER_EVENTS) == reference


def test_schema_drift_is_kept_in_bronze_and_reported_and_missing_fields_quarantined(
    world,
) -> None:
    settings, _ = world
    day = landing_days(settings)[0]
    folder = settings.state_dir / "landing" / "events" / f"date={day}"
    first_file = next(folder.glob("*.jsonl.gz"))
    template = json.loads(gzip.decompress(first_file.read_bytes()).split(b"\n")[0])
    drifted = dict(template, event_id="0e1d7d1f-0000-4000-8000-000000000001", lyrics_shown=True)
    missing = {k: v for k, v in template.items() if k != "track_id"}
    missing["event_id"] = "0e1d7d1f-0000-4000-8000-000000000002"
    extra = folder / f"events-{day}T23-extra.jsonl.gz"
    lines = b"\n".join(json.dumps(record).encode() for record in (drifted, missing))
    extra.write_bytes(gzip.compress(lines + b"\n"))
    try:
        [run] = ingest(settings, [day], run_id="drift")
        assert json.loads(run["unknown_fields"]) == {"lyrics_shown": 1}
        source = f"events/date={day}/{extra.name}"
        bronze = lake.read_arrow(
            settings, tables.BRONZE_EVENTS, filter=ds.field("source_file") == source
        )
        assert b'"lyrics_shown": true' in bronze.column("raw")[0].as_py()
        silver = lake.read_arrow(settings, tables.SILVER_EVENTS, columns=["event_id"])
        silver_ids = set(silver.column("event_id").to_pylist())
        assert drifted["event_id"] in silver_ids
        quarantined = lake.read_arrow(settings, tables.QUARANTINE_EVENTS).to_pylist()
        [row] = [r for r in quarantined if missing["event_id"] in r["raw"]]
        assert row["reasons"] == ["missing_field:track_id"]
        assert row["line_number"] == 2
    finally:
        extra.unlink()
        ingest(settings, [day], run_id="drift-cleanup")


def test_an_unreadable_landing_file_fails_with_a_clear_message(world, env_for, tmp_path) -> None:
    settings, _ = world
    folder = tmp_path / "events" / "date=2026-11-01"
    folder.mkdir(parents=True)
    (folder / "events-2026-11-01T00.jsonl.gz").write_bytes(b"this is not gzip")
    result = subprocess.run(
        ["audotics", "ingest", "--date", "2026-11-01"],
        env={**env_for(settings), "AUDOTICS_LANDING_URI": str(tmp_path)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert "error: cannot read landing file" in result.stderr
    assert "events-2026-11-01T00.jsonl.gz" in result.stderr
    assert "Traceback" not in result.stderr


def test_catalog_changes_become_scd2_versions_exactly_once(world) -> None:
    settings, _ = world
    extract_catalog(settings, "catalog-1")
    with db.connect(settings, autocommit=True) as conn:
        user_id, country = conn.execute(
            "select user_id::text, country from app.users order by user_id limit 1"
        ).fetchone()
        new_country = "SE" if country != "SE" else "NO"
        changed_at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        conn.execute(
            "update app.users set country = %s, updated_at = %s where user_id = %s",
            (new_country, changed_at, user_id),
        )
    assert extract_catalog(settings, "catalog-2")["users"] == 1
    assert extract_catalog(settings, "catalog-3")["users"] == 0  # nothing new: nothing added

    versions = (
        lake.read_arrow(settings, tables.SILVER_USERS, filter=ds.field("user_id") == user_id)
        .sort_by("valid_from")
        .to_pylist()
    )
    assert [(v["country"], v["is_current"]) for v in versions] == [
        (country, False), (new_country, True)
    ]  # fmt: skip
    assert versions[0]["valid_to"] == versions[1]["valid_from"] == changed_at
    assert versions[1]["valid_to"] is None


def test_catalog_drift_leaves_out_undeclared_columns_and_stops_on_missing_ones(
    world, caplog
) -> None:
    settings, _ = world
    extract_catalog(settings, "drift-before")
    with db.connect(settings, autocommit=True) as conn:
        conn.execute("alter table app.artists add column label text default 'indie'")
        try:
            with caplog.at_level(logging.WARNING, logger="ingestion.catalog_extract"):
                assert extract_catalog(settings, "drift-added")["artists"] == 0
            assert "app.artists" in caplog.text and "label" in caplog.text
            held = lake.dataset(settings, tables.SILVER_ARTISTS).schema
            assert held.names == tables.SILVER_ARTISTS.schema.names  # no "label"
        finally:
            conn.execute("alter table app.artists drop column label")
        conn.execute("alter table app.artists rename column genre to style")
        try:
            with pytest.raises(CatalogError, match=r"app\.artists has no column genre"):
                extract_catalog(settings, "drift-missing")
        finally:
            conn.execute("alter table app.artists rename column style to genre")


def test_airflow_dags_test_ingests_the_day(world, env_for, airflow_home) -> None:
    settings, manifest = world
    day = landing_days(settings)[0]
    result = subprocess.run(
        ["airflow", "dags", "test", "ingest_events", str(day)],
        env={**env_for(settings), **airflow_home}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "state=success" in result.stdout + result.stderr
    runs = lake.read_arrow(settings, tables.INGEST_RUNS).to_pylist()
    [run] = [r for r in runs if r["run_id"].startswith("manual__")]
    assert run["status"] == "success"
    assert run["input_records"] == manifest.days[str(day)].lines
    assert run["silver_rows"] == manifest.days[str(day)].valid_events
