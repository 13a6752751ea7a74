"""The stage registry is the one declaration of the pipeline: the DAGs' schedules and outlets are
its triggers and writes, every table a stage reads is written before it runs, and a run's
snapshot date is bound to the data that triggered it."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.sdk import AssetAll, AssetAny
from airflow.timetables.interval import CronDataIntervalTimetable

from audotics.lake import tables
from orchestration.airflow_support import snapshot_date, snapshot_date_for
from orchestration.stages import DAG_STAGES, EXTERNAL_INPUTS, STAGES, WAREHOUSE
from tests.support import REPO


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def test_every_dag_is_a_stage_scheduled_and_writing_as_the_registry_says(dags) -> None:
    assert sorted(dags) == sorted(stage.dag_id for stage in DAG_STAGES)
    for stage in DAG_STAGES:
        dag = dags[stage.dag_id]
        if stage.trigger is None:
            assert isinstance(dag.timetable, CronDataIntervalTimetable), stage.name
        else:
            condition = dag.timetable.asset_condition
            kind = AssetAll if stage.trigger.mode == "all" else AssetAny
            assert type(condition) is kind, stage.name
            assert [a.name for a in condition.objects] == [t.path for t in stage.trigger.tables]
        lake_outlets = {
            outlet.name
            for task in dag.tasks
            for outlet in task.outlets
            if outlet.uri.startswith("audotics://lake/")
        }
        assert lake_outlets == {table.path for table in stage.writes}, stage.name


def test_every_read_is_written_by_an_earlier_stage_or_is_an_input() -> None:
    written: set[tables.Table] = set()
    for stage in STAGES:  # the nightly order is a topological order of the reads
        assert set(stage.reads) <= written, f"{stage.name} reads a table no earlier stage wrote"
        assert set(stage.inputs) <= set(EXTERNAL_INPUTS), stage.name
        if stage.trigger:
            assert set(stage.trigger.tables) <= set(stage.reads), stage.name
        assert not written & set(stage.writes), f"{stage.name} writes another stage's table"
        written |= set(stage.writes)
    # Every catalog table has its stage (the audit's is GDPR erasure).
    assert written == set(tables.TABLES)


def test_the_warehouse_stage_reads_what_the_warehouse_loads() -> None:
    from warehouse.load import SOURCES

    assert sorted(WAREHOUSE.reads, key=str) == sorted((s.table for s in SOURCES), key=str)


def test_snapshot_date_is_the_last_day_complete_in_every_input() -> None:
    fallback = at("2026-11-21T08:00:00")
    ends = {
        "silver/events": [at("2026-11-03T00:00:00"), at("2026-11-04T00:00:00")],
        "silver/users": [at("2026-11-04T00:00:00"), None],
        "silver/tracks": [None],  # unknown: ignored
    }
    assert snapshot_date_for(ends, fallback) == dt.date(2026, 11, 3)
    ends["silver/users"] = [at("2026-11-03T06:00:00")]  # users only complete through 11-02
    assert snapshot_date_for(ends, fallback) == dt.date(2026, 11, 2)
    assert snapshot_date_for({}, fallback) == dt.date(2026, 11, 20)


def run(*, conf=None, end=None, events=(), after="2026-11-21T08:00:00") -> SimpleNamespace:
    return SimpleNamespace(
        conf=conf or {}, data_interval_end=end, consumed_asset_events=list(events),
        run_after=at(after),
    )  # fmt: skip


def event(asset: str, source: SimpleNamespace | None) -> SimpleNamespace:
    return SimpleNamespace(asset=SimpleNamespace(name=asset), source=source)


def test_a_run_is_bound_to_the_snapshot_its_triggering_runs_built() -> None:
    def source_run(e):
        return e.source

    ingest = {day: run(end=at(f"2026-11-{day:02d}T00:00:00")) for day in (3, 4, 5)}
    # build_features, asset-triggered (no interval of its own): silver/users lags one day.
    features = run(
        events=[
            event("silver/events", ingest[4]), event("silver/events", ingest[5]),
            event("silver/users", ingest[4]), event("silver/tracks", None),
        ]
    )  # fmt: skip
    assert snapshot_date(features, {"as_of": None}, source_run) == dt.date(2026, 11, 3)
    # train_recommender, triggered by that build: the same day, traced back, not "the newest".
    train = run(events=[event("features/interactions", features)])
    assert snapshot_date(train, {}, source_run) == dt.date(2026, 11, 3)
    # A manual build with a date in its conf binds the training it triggers to that date.
    manual = run(conf={"as_of": "2026-11-02"})
    assert snapshot_date(run(events=[event("features/interactions", manual)]), {}, source_run) == (
        dt.date(2026, 11, 2)
    )
    # The param wins; with nothing known, the day before the run.
    assert snapshot_date(train, {"as_of": "2026-11-01"}, source_run) == dt.date(2026, 11, 1)
    assert snapshot_date(run(), {}, source_run) == dt.date(2026, 11, 20)


def test_every_lazily_loaded_command_resolves() -> None:
    import importlib

    import click

    from orchestration.cli import LAZY_COMMANDS

    for name, target in LAZY_COMMANDS.items():
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command) and command.name == name, target
