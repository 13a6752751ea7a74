"""Two ingests of different landing days that share events, run at once, leave every event
once in silver: each day's refine judges duplicates against silver and commits under one lock,
and the second waits for the first. Real CLI processes, PostgreSQL and Delta tables."""

from __future__ import annotations

import shutil
import subprocess

import pyarrow.compute as pc

from audotics import lake
from audotics.lake import tables
from demo.world.generate import generate_world
from ingestion.catalog_extract import extract_catalog
from ingestion.landing import day_folder, landing_days


def test_two_days_sharing_events_ingested_at_once_keep_each_event_once(
    isolated_platform, env_for
) -> None:
    settings = isolated_platform(
        "concurrent", world_users=60, world_artists=10, world_tracks=120, world_days=2,
        world_events_per_day=2_000, world_bad_record_rate=0.0,
    )  # fmt: skip
    generate_world(settings, progress=False)
    first, second = landing_days(settings)
    # Day 2 receives again every event of one of day 1's files (a client resending a batch).
    resent = sorted(day_folder(settings, first).glob("*.jsonl.gz"))[-1]
    shutil.copy(resent, day_folder(settings, second) / f"events-{second}T00-resent.jsonl.gz")
    extract_catalog(settings, "catalog")  # once, so the two runs only race on the events

    env = env_for(settings)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [
        subprocess.Popen(["audotics", "ingest", "--date", str(day)], env=env, **pipes)
        for day in (first, second)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]

    ids = lake.read_arrow(settings, tables.SILVER_EVENTS, columns=["event_id"]).column(0)
    assert len(ids) == len(pc.unique(ids))
    rows = lake.read_arrow(settings, tables.INGEST_RUNS).to_pylist()
    assert {row["status"] for row in rows} == {"success"}
    assert sum(row["duplicate_rows"] for row in rows) >= 1  # the resent events, on one day
    assert any("waiting for lock 'refine silver/events'" in err for _, err in outputs)
