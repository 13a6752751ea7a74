"""The delta-rs half of the lake (`audotics.lake`) on real Delta tables in a temporary lake."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audotics import lake
from audotics.lake import LakeError
from audotics.lake.tables import Table
from audotics.settings import Settings

DAY_1, DAY_2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
# Scratch tables of these tests, one partitioned by day and one not.
BY_DAY = Table(
    "scratch", "events_by_day", "test table", None, partition_by=("event_date",), keys=("event_id",)
)
FLAT = Table("scratch", "events", "test table", None, keys=("event_id",))
EVENTS = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("event_date", pa.date32()),
        ("ms_played", pa.int64()),
    ]
)


def events(ids: list[str], day: dt.date, user: str = "u1", ms_played: int = 1000) -> pa.Table:
    start = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return pa.table(
        {
            "event_id": ids,
            "user_id": [user] * len(ids),
            "ts": [start + dt.timedelta(seconds=i) for i in range(len(ids))],
            "event_date": [day] * len(ids),
            "ms_played": [ms_played] * len(ids),
        },
        schema=EVENTS,
    )


def rows(table: pa.Table, *columns: str) -> list[tuple]:
    return sorted(zip(*(table[c].to_pylist() for c in columns), strict=True))


@pytest.fixture
def lake_settings(make_settings, tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def test_write_read_versions_and_time_travel(lake_settings: Settings) -> None:
    assert not lake.exists(lake_settings, BY_DAY)
    assert lake.version(lake_settings, BY_DAY) is None

    first = lake.write_arrow(
        lake_settings,
        BY_DAY,
        events(["e1", "e2"], DAY_1),
        metadata={"run_id": "run-1"},
    )
    second = lake.write_arrow(lake_settings, BY_DAY, events(["e3"], DAY_2))

    assert (first, second) == (0, 1)
    assert lake.version(lake_settings, BY_DAY) == 1
    current = lake.read_arrow(lake_settings, BY_DAY)
    assert current.schema == EVENTS
    assert rows(current, "event_id", "event_date") == [
        ("e1", DAY_1),
        ("e2", DAY_1),
        ("e3", DAY_2),
    ]
    assert rows(lake.read_arrow(lake_settings, BY_DAY, version=0), "event_id") == [
        ("e1",),
        ("e2",),
    ]
    assert lake.open_table(lake_settings, BY_DAY).metadata().partition_columns == ["event_date"]
    assert [c["version"] for c in lake.history(lake_settings, BY_DAY)] == [1, 0]
    assert lake.history(lake_settings, BY_DAY, limit=2)[1]["run_id"] == "run-1"
    logged = lake.commits(lake_settings, BY_DAY, itertools.count())
    assert [(c["version"], c.get("run_id")) for c in logged] == [(0, "run-1"), (1, None)]


def test_overwrite_with_predicate_replaces_only_that_partition(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, BY_DAY, events(["a1", "a2"], DAY_1))
    lake.write_arrow(lake_settings, BY_DAY, events(["b1"], DAY_2))

    version = lake.write_arrow(
        lake_settings,
        BY_DAY,
        events(["a3"], DAY_1),
        mode="overwrite",
        predicate=f"event_date = '{DAY_1}'",
    )

    assert version == 2
    current = lake.read_arrow(lake_settings, BY_DAY)
    assert rows(current, "event_id", "event_date") == [("a3", DAY_1), ("b1", DAY_2)]


def test_merge_upserts_or_only_inserts_new_keys(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, FLAT, events(["e1", "e2"], DAY_1, ms_played=10))

    inserted = lake.merge_arrow(
        lake_settings,
        FLAT,
        events(["e2", "e3"], DAY_1, ms_played=20),
        update=False,
    )
    assert inserted["num_target_rows_inserted"] == 1
    assert rows(lake.read_arrow(lake_settings, FLAT), "event_id", "ms_played") == [
        ("e1", 10),
        ("e2", 10),  # insert-only: the existing row keeps its value
        ("e3", 20),
    ]

    upserted = lake.merge_arrow(
        lake_settings,
        FLAT,
        events(["e1", "e4"], DAY_1, ms_played=30),
        update=True,
    )
    assert (upserted["num_target_rows_inserted"], upserted["num_target_rows_updated"]) == (1, 1)
    assert rows(lake.read_arrow(lake_settings, FLAT), "event_id", "ms_played") == [
        ("e1", 30),
        ("e2", 10),
        ("e3", 20),
        ("e4", 30),
    ]
    assert lake.version(lake_settings, FLAT) == 2


def test_merge_creates_a_missing_table(lake_settings: Settings) -> None:
    metrics = lake.merge_arrow(lake_settings, FLAT, events(["e1"], DAY_1), update=True)
    assert metrics["num_target_rows_inserted"] == 1
    assert lake.version(lake_settings, FLAT) == 0


def test_a_missing_table_is_a_lake_error_naming_it(lake_settings: Settings) -> None:
    nothing = Table("scratch", "nothing", "test table", None)
    with pytest.raises(LakeError, match=r"scratch/nothing not found at .*scratch/nothing"):
        lake.read_arrow(lake_settings, nothing)
    with pytest.raises(LakeError, match="scratch/nothing"):
        lake.history(lake_settings, nothing)


def test_a_refused_write_is_a_lake_error_naming_the_table(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, FLAT, events(["e1"], DAY_1))
    other_schema = pa.table({"event_id": pa.array([1], pa.int64())})
    with pytest.raises(LakeError, match="write to scratch/events"):
        lake.write_arrow(lake_settings, FLAT, other_schema)
    assert lake.version(lake_settings, FLAT) == 0


def test_erasure_deletes_rows_then_vacuum_deletes_their_bytes(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, FLAT, events(["e1", "e2"], DAY_1, user="erase-me"))
    lake.write_arrow(lake_settings, FLAT, events(["e3"], DAY_1, user="keep-me"))

    metrics = lake.delete_rows(
        lake_settings, FLAT, "user_id = 'erase-me'", metadata={"reason": "gdpr"}
    )

    assert metrics["num_deleted_rows"] == 2
    assert rows(lake.read_arrow(lake_settings, FLAT), "user_id") == [("keep-me",)]
    assert lake.history(lake_settings, FLAT, limit=1)[0]["reason"] == "gdpr"
    # Until a vacuum, time travel (and the files) still hold the erased rows.
    assert len(lake.read_arrow(lake_settings, FLAT, version=1)) == 3

    removed = lake.vacuum(lake_settings, FLAT, retention_hours=0)

    assert len(removed) == 1
    root = Path(lake.table_uri(lake_settings, FLAT))
    stored_users = {
        user
        for path in root.rglob("*.parquet")
        for user in pq.read_table(path)["user_id"].to_pylist()
    }
    assert stored_users == {"keep-me"}
    assert rows(lake.read_arrow(lake_settings, FLAT), "user_id") == [("keep-me",)]


def test_vacuum_keeps_recent_files_by_default(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, FLAT, events(["e1"], DAY_1))
    lake.write_arrow(lake_settings, FLAT, events(["e2"], DAY_1), mode="overwrite")
    assert lake.vacuum(lake_settings, FLAT, dry_run=True) == []
    assert len(lake.read_arrow(lake_settings, FLAT, version=0)) == 1


def test_concurrent_appends_all_land_with_their_own_versions(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, FLAT, events(["seed"], DAY_1))
    writers = 6
    start = threading.Barrier(writers)
    versions: list[int] = []

    def append(number: int) -> None:
        start.wait()
        versions.append(lake.write_arrow(lake_settings, FLAT, events([f"w{number}"], DAY_1)))

    threads = [threading.Thread(target=append, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(versions) == list(range(1, writers + 1))
    current = lake.read_arrow(lake_settings, FLAT)
    assert rows(current, "event_id") == sorted([("seed",), *((f"w{n}",) for n in range(writers))])


def test_newest_partition_reads_the_largest_partition_value(lake_settings: Settings) -> None:
    lake.write_arrow(lake_settings, BY_DAY, events([], DAY_1))
    assert lake.newest_partition(lake_settings, BY_DAY) is None  # no partition yet

    lake.write_arrow(lake_settings, BY_DAY, events(["b1"], DAY_2))
    lake.write_arrow(lake_settings, BY_DAY, events(["a1"], DAY_1))

    assert lake.newest_partition(lake_settings, BY_DAY) == DAY_2.isoformat()


def test_read_current_selects_the_current_rows_of_an_scd2_table(lake_settings: Settings) -> None:
    people = Table("scratch", "people", "test table", None, keys=("user_id",), scd2=True)
    with pytest.raises(LakeError, match="scratch/people does not exist yet"):
        lake.read_current(lake_settings, people)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    later = start + dt.timedelta(days=1)
    history = pa.table(
        {
            "user_id": ["u1", "u1", "u2"],
            "country": ["DE", "FR", "SE"],
            "valid_from": [start, later, start],
            "valid_to": [later, None, None],
            "is_current": [False, True, True],
        }
    )
    lake.write_arrow(lake_settings, people, history)

    current = lake.read_current(lake_settings, people, ["user_id", "country"])

    assert current.column_names == ["user_id", "country"]
    assert rows(current, "user_id", "country") == [("u1", "FR"), ("u2", "SE")]
    with pytest.raises(LakeError, match="scratch/events keeps no SCD2 history"):
        lake.read_current(lake_settings, FLAT)
