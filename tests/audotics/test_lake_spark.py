"""The Spark half of the lake (`audotics.lake.spark`) against the delta-rs half, on real Delta
tables and the session's local Spark: both engines see the same rows and the same versions."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from audotics import lake
from audotics.lake import LakeError
from audotics.lake.spark import SPARK_WRITE_KEY, _stage, hadoop_path, read_table, write_table
from audotics.lake.tables import Table
from audotics.settings import Settings

DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]


def scratch(name: str, *partition_by: str) -> Table:
    """A table of these tests, partitioned by `partition_by`."""
    return Table("scratch", name, "test table", None, partition_by=partition_by)


INTERACTIONS = scratch("interactions", "as_of_date")
# The column types of the data contracts.
SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("last_ts", pa.timestamp("us", tz="UTC")),
        ("as_of_date", pa.date32()),
        ("plays", pa.int64()),
        ("confidence", pa.float64()),
        ("factors", pa.list_(pa.float32())),
    ]
)
SPARK_TYPES = [
    T.StringType(),
    T.TimestampType(),
    T.DateType(),
    T.LongType(),
    T.DoubleType(),
    T.ArrayType(T.FloatType()),
]


def sample(day: dt.date, users: list[str], plays: int = 1) -> pa.Table:
    """One row per user; timestamps with all six microsecond digits."""
    last = dt.datetime.combine(day, dt.time(23, 59, 59, 999_999), tzinfo=dt.UTC)
    return pa.table(
        {
            "user_id": users,
            "last_ts": [last - dt.timedelta(minutes=i, microseconds=i) for i in range(len(users))],
            "as_of_date": [day] * len(users),
            "plays": [plays] * len(users),
            "confidence": [0.5 + i for i in range(len(users))],
            "factors": [[float(i), -0.25] for i in range(len(users))],
        },
        schema=SCHEMA,
    )


def with_nulls(day: dt.date) -> pa.Table:
    return pa.table(
        {
            "user_id": ["nulls"],
            "last_ts": [None],
            "as_of_date": [day],
            "plays": [None],
            "confidence": [None],
            "factors": [None],
        },
        schema=SCHEMA,
    )


def canonical(table: pa.Table) -> list[dict]:
    """Rows in a stable order, with Python values of each column's exact Arrow type."""
    return table.sort_by([("user_id", "ascending"), ("as_of_date", "ascending")]).to_pylist()


def users(table: pa.Table) -> list[str]:
    return sorted(table["user_id"].to_pylist())


def tuples(table: pa.Table, *columns: str) -> list[tuple]:
    return sorted(zip(*(table[column].to_pylist() for column in columns), strict=True))


def table_files(settings: Settings, table: Table = INTERACTIONS) -> pa.Table:
    return pa.table(lake.open_table(settings, table).get_add_actions(flatten=True))


@pytest.fixture
def lake_settings(make_settings, tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def frame(spark: SparkSession) -> Callable[[pa.Table], DataFrame]:
    return spark.createDataFrame


def test_types_round_trip_between_the_engines(spark, lake_settings, frame) -> None:
    original = pa.concat_tables([sample(DAYS[0], ["u1", "u2"]), with_nulls(DAYS[1])])

    from_rs, from_spark = scratch("from_rs", "as_of_date"), scratch("from_spark", "as_of_date")
    lake.write_arrow(lake_settings, from_rs, original)
    read_by_spark = read_table(spark, lake_settings, from_rs)
    assert [f.dataType for f in read_by_spark.schema.fields] == SPARK_TYPES
    assert canonical(read_by_spark.toArrow()) == canonical(original)

    version = write_table(frame(original), lake_settings, from_spark)
    read_by_rs = lake.read_arrow(lake_settings, from_spark)
    assert version == 0
    assert read_by_rs.schema == SCHEMA  # timestamp[us, UTC], date32, list<float32>, ...
    assert canonical(read_by_rs) == canonical(original)
    created = lake.open_table(lake_settings, from_spark)
    assert created.metadata().partition_columns == ["as_of_date"]
    # The plain protocol delta-spark also writes: tables move freely between the two modes.
    assert created.protocol()[:2] == (1, 2)


def test_both_engines_see_the_same_rows_at_every_version(spark, lake_settings, frame) -> None:
    versions = [
        lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[0], ["a"])),
        write_table(frame(sample(DAYS[1], ["b"])), lake_settings, INTERACTIONS),
        lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[2], ["c"])),
        write_table(
            frame(sample(DAYS[1], ["b2"])),
            lake_settings,
            INTERACTIONS,
            mode="overwrite",
            predicate=f"as_of_date = '{DAYS[1]}'",
        ),
    ]

    assert versions == [0, 1, 2, 3]
    assert lake.version(lake_settings, INTERACTIONS) == 3
    expected_users = [["a"], ["a", "b"], ["a", "b", "c"], ["a", "b2", "c"]]
    for version, expected in zip(versions, expected_users, strict=True):
        by_spark = read_table(spark, lake_settings, INTERACTIONS, version=version).toArrow()
        by_rs = lake.read_arrow(lake_settings, INTERACTIONS, version=version)
        assert users(by_spark) == expected
        assert canonical(by_spark) == canonical(by_rs)


def test_partition_values_keep_their_types_and_spelling(spark, lake_settings, frame) -> None:
    labels = ["a b", "x:y+z", "{e}[1]*?", "100%", "é/ü", None]
    data = pa.table(
        {
            "id": pa.array(range(len(labels)), pa.int64()),
            "day": pa.array([DAYS[0], DAYS[0], DAYS[0], DAYS[1], DAYS[1], None], pa.date32()),
            "label": labels,
        }
    )
    by_id = [("id", "ascending")]

    by_spark, by_rs = scratch("by_spark", "day", "label"), scratch("by_rs", "day", "label")
    write_table(frame(data), lake_settings, by_spark)
    lake.write_arrow(lake_settings, by_rs, data)

    for table in (by_spark, by_rs):
        assert lake.read_arrow(lake_settings, table).sort_by(by_id) == data
        assert read_table(spark, lake_settings, table).toArrow().sort_by(by_id) == data
        files = table_files(lake_settings, table)
        assert files.schema.field("partition.day").type == pa.date32()
        assert sorted(files["partition.label"].to_pylist(), key=str) == sorted(labels, key=str)
    only_x = read_table(spark, lake_settings, by_spark, partition_filter="label = 'x:y+z'")
    assert only_x.toArrow()["id"].to_pylist() == [1]


def test_overwrite_with_predicate_replaces_only_its_partition(spark, lake_settings, frame) -> None:
    seed = pa.concat_tables(sample(day, ["u1", "u2"]) for day in DAYS)
    lake.write_arrow(lake_settings, INTERACTIONS, seed)
    untouched = {
        path
        for path, day in tuples(table_files(lake_settings), "path", "partition.as_of_date")
        if day != DAYS[1]
    }

    version = write_table(
        frame(sample(DAYS[1], ["new"], plays=9)),
        lake_settings,
        INTERACTIONS,
        mode="overwrite",
        predicate=f"as_of_date = '{DAYS[1]}'",
        metadata={"run_id": "rerun-1"},
    )

    assert version == 1
    current = lake.read_arrow(lake_settings, INTERACTIONS)
    assert tuples(current, "as_of_date", "user_id", "plays") == [
        (DAYS[0], "u1", 1),
        (DAYS[0], "u2", 1),
        (DAYS[1], "new", 9),
        (DAYS[2], "u1", 1),
        (DAYS[2], "u2", 1),
    ]
    assert untouched <= set(table_files(lake_settings)["path"].to_pylist())
    commit = lake.history(lake_settings, INTERACTIONS, limit=1)[0]
    assert commit["run_id"] == "rerun-1"
    assert commit[SPARK_WRITE_KEY]["mode"] == "overwrite"
    assert commit[SPARK_WRITE_KEY]["predicate"] == f"as_of_date = '{DAYS[1]}'"

    with pytest.raises(LakeError, match="outside the overwrite's predicate"):
        write_table(
            frame(sample(DAYS[0], ["stray"])),
            lake_settings,
            INTERACTIONS,
            mode="overwrite",
            predicate=f"as_of_date = '{DAYS[1]}'",
        )
    with pytest.raises(LakeError, match="must be a SQL condition on the partition columns"):
        write_table(
            frame(sample(DAYS[1], ["x"])),
            lake_settings,
            INTERACTIONS,
            mode="overwrite",
            predicate="plays > 1",
        )
    assert lake.version(lake_settings, INTERACTIONS) == 1


def test_overwrite_of_a_partition_the_table_does_not_hold_yet_adds_it(
    spark, lake_settings, frame
) -> None:
    lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[0], ["u1"]))  # a day's first run
    write_table(
        frame(sample(DAYS[1], ["u2"])), lake_settings, INTERACTIONS,
        mode="overwrite", predicate=f"as_of_date = '{DAYS[1]}'",
    )  # fmt: skip
    current = lake.read_arrow(lake_settings, INTERACTIONS)
    assert tuples(current, "as_of_date", "user_id") == [(DAYS[0], "u1"), (DAYS[1], "u2")]


def test_stats_come_from_the_parquet_footers(spark, lake_settings, frame) -> None:
    data = pa.concat_tables([sample(DAYS[0], ["u1", "u2", "u3"]), with_nulls(DAYS[0])])

    by_rs = scratch("by_rs", "as_of_date")
    write_table(frame(data).coalesce(1), lake_settings, INTERACTIONS)
    lake.write_arrow(lake_settings, by_rs, data)

    [stats] = table_files(lake_settings).to_pylist()
    assert stats["num_records"] == 4
    assert {k: v for k, v in stats.items() if k.startswith("null_count.")} == {
        "null_count.user_id": 0,
        "null_count.last_ts": 1,
        "null_count.plays": 1,
        "null_count.confidence": 1,
        "null_count.factors": None,  # lists carry no statistics, as with delta-rs
    }
    assert (stats["min.user_id"], stats["max.user_id"]) == ("nulls", "u3")
    assert (stats["min.plays"], stats["max.plays"]) == (1, 1)
    # Millisecond precision, widened outward: 23:57:59.999997 down, 23:59:59.999999 up.
    assert stats["min.last_ts"] == dt.datetime(2026, 11, 1, 23, 57, 59, 999_000, tzinfo=dt.UTC)
    assert stats["max.last_ts"] == dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    assert stats["min.confidence"] is None  # floating point: a footer cannot rule out NaN
    # The same counts and exact bounds as delta-rs computes for the same rows.
    [by_rs_stats] = table_files(lake_settings, by_rs).to_pylist()
    for name in (
        "num_records",
        "null_count.user_id",
        "null_count.plays",
        "min.user_id",
        "max.plays",
    ):
        assert stats[name] == by_rs_stats[name]
    # ...which delta-rs uses to skip files.
    table = lake.open_table(lake_settings, INTERACTIONS)
    assert table.count() == 4
    assert table.file_uris(file_pruning_predicate="plays > 1") == []
    assert len(table.file_uris(file_pruning_predicate="user_id = 'u2'")) == 1


def test_a_write_killed_before_its_commit_stays_invisible(spark, lake_settings, frame) -> None:
    write_table(frame(sample(DAYS[0], ["a"])), lake_settings, INTERACTIONS)
    before = canonical(lake.read_arrow(lake_settings, INTERACTIONS))
    # A writer killed between writing its files and committing them leaves just this behind:
    staged = _stage(frame(sample(DAYS[1], ["b"])), lake_settings, INTERACTIONS, ["as_of_date"])
    root = Path(lake.table_uri(lake_settings, INTERACTIONS))
    assert staged.files and all((root / add.path).is_file() for add in staged.files)

    assert lake.version(lake_settings, INTERACTIONS) == 0
    assert canonical(lake.read_arrow(lake_settings, INTERACTIONS)) == before
    assert canonical(read_table(spark, lake_settings, INTERACTIONS).toArrow()) == before
    # The default retention never deletes files a write might still commit.
    assert lake.vacuum(lake_settings, INTERACTIONS, dry_run=True) == []

    rerun = write_table(frame(sample(DAYS[1], ["b"])), lake_settings, INTERACTIONS)

    assert rerun == 1
    assert users(lake.read_arrow(lake_settings, INTERACTIONS)) == ["a", "b"]
    removed = lake.vacuum(lake_settings, INTERACTIONS, retention_hours=0)
    assert {add.path for add in staged.files} <= set(removed)
    assert not any((root / add.path).exists() for add in staged.files)
    assert users(read_table(spark, lake_settings, INTERACTIONS).toArrow()) == ["a", "b"]


def run_concurrently(*writers: Callable[[], int]) -> list[int | LakeError]:
    """Start the writers together; each outcome is a version or the LakeError it raised."""
    start = threading.Barrier(len(writers))
    outcomes: list[int | LakeError] = [LakeError("did not finish")] * len(writers)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = writers[index]()
        except LakeError as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_appends_from_both_engines_all_land(spark, lake_settings, frame) -> None:
    lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[0], ["seed"]))
    spark_rows = {name: frame(sample(DAYS[1], [name])) for name in ("spark-1", "spark-2")}

    def spark_append(name: str) -> Callable[[], int]:
        return lambda: write_table(spark_rows[name], lake_settings, INTERACTIONS)

    def rs_append(name: str) -> Callable[[], int]:
        return lambda: lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[2], [name]))

    outcomes = run_concurrently(
        spark_append("spark-1"), spark_append("spark-2"), *(rs_append(f"rs-{n}") for n in range(3))
    )

    assert sorted(outcomes) == [1, 2, 3, 4, 5]  # every commit landed, each with its own version
    expected = ["rs-0", "rs-1", "rs-2", "seed", "spark-1", "spark-2"]
    assert users(lake.read_arrow(lake_settings, INTERACTIONS)) == expected
    assert users(read_table(spark, lake_settings, INTERACTIONS).toArrow()) == expected
    paths = table_files(lake_settings)["path"].to_pylist()
    root = Path(lake.table_uri(lake_settings, INTERACTIONS))
    assert len(paths) == len(set(paths)) == 6
    assert all((root / unquote(path)).is_file() for path in paths)  # the log URI-encodes


def test_concurrent_overwrites_of_a_partition_leave_one_writers_rows(
    spark, lake_settings, frame
) -> None:
    lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[0], ["old"]))
    batches = {"x": ["x1", "x2"], "y": ["y1"]}

    def overwrite(name: str) -> Callable[[], int]:
        rows = frame(sample(DAYS[0], batches[name]))
        predicate = f"as_of_date = '{DAYS[0]}'"
        return lambda: write_table(
            rows, lake_settings, INTERACTIONS, mode="overwrite", predicate=predicate
        )

    outcomes = run_concurrently(overwrite("x"), overwrite("y"))

    # Each commit either lands or fails cleanly (a conflict on the files both replace); the
    # partition then holds exactly the rows of the last commit that landed.
    landed = {name: o for name, o in zip(batches, outcomes, strict=True) if isinstance(o, int)}
    refused = [o for o in outcomes if isinstance(o, LakeError)]
    assert sorted(landed.values()) == list(range(1, len(landed) + 1))
    assert all("commit of Spark write" in str(error) for error in refused)
    last = max(landed, key=landed.__getitem__)
    assert users(lake.read_arrow(lake_settings, INTERACTIONS)) == batches[last]


def test_an_empty_table_reads_as_an_empty_frame_with_its_schema(
    spark, lake_settings, frame
) -> None:
    empty_rs, empty_spark = scratch("empty_rs", "as_of_date"), scratch("empty_spark")
    lake.write_arrow(lake_settings, empty_rs, sample(DAYS[0], []))
    empty = read_table(spark, lake_settings, empty_rs)
    assert empty.count() == 0
    assert [f.dataType for f in empty.schema.fields] == SPARK_TYPES

    version = write_table(frame(sample(DAYS[0], [])), lake_settings, empty_spark)
    assert version == 0
    assert lake.read_arrow(lake_settings, empty_spark) == sample(DAYS[0], [])


def test_tables_with_features_plain_parquet_cannot_honour_are_refused(
    spark, lake_settings, frame
) -> None:
    rows = sample(DAYS[0], ["u1"])
    for name, configuration, feature in [
        ("dv", {"delta.enableDeletionVectors": "true"}, "deletionVectors"),
        ("cm", {"delta.columnMapping.mode": "name"}, "columnMapping"),
    ]:
        table = scratch(name)
        write_deltalake(lake.table_uri(lake_settings, table), rows, configuration=configuration)
        with pytest.raises(LakeError, match=rf"Spark cannot read .*{name}.*{feature}"):
            read_table(spark, lake_settings, table)
        with pytest.raises(LakeError, match=rf"Spark cannot write .*{name}.*{feature}"):
            write_table(frame(rows), lake_settings, table)


def test_the_native_switch_without_delta_jars_says_so(spark, make_settings, tmp_path, frame):
    native = make_settings(tmp_path, spark_delta_native=True)
    lake.write_arrow(native, INTERACTIONS, sample(DAYS[0], ["u1"]))  # delta-rs: unaffected

    with pytest.raises(
        LakeError, match="spark_delta_native is on, but Spark has no Delta Lake jars"
    ):
        read_table(spark, native, INTERACTIONS).collect()
    with pytest.raises(
        LakeError, match="spark_delta_native is on, but Spark has no Delta Lake jars"
    ):
        write_table(frame(sample(DAYS[0], ["u2"])), native, INTERACTIONS)
    assert lake.version(native, INTERACTIONS) == 0


def test_writes_that_do_not_fit_the_table_are_refused(spark, lake_settings, frame) -> None:
    not_null = SCHEMA.set(0, SCHEMA.field("user_id").with_nullable(False))
    lake.write_arrow(lake_settings, INTERACTIONS, sample(DAYS[0], ["u1"]).cast(not_null))
    rows = frame(sample(DAYS[1], ["u2"]))

    with pytest.raises(LakeError, match="plays is int, the table has bigint"):
        write_table(rows.withColumn("plays", rows.plays.cast("int")), lake_settings, INTERACTIONS)
    with pytest.raises(LakeError, match=r"unexpected columns \['extra'\]"):
        write_table(rows.withColumn("extra", rows.plays), lake_settings, INTERACTIONS)
    with pytest.raises(LakeError, match=r"partitioned by \['as_of_date'\], not \['user_id'\]"):
        # The same table, declared with another partitioning.
        write_table(rows, lake_settings, scratch(INTERACTIONS.name, "user_id"))
    with pytest.raises(LakeError, match="a predicate needs mode='overwrite'"):
        write_table(rows, lake_settings, INTERACTIONS, predicate="as_of_date = '2026-11-02'")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    try:
        with pytest.raises(LakeError, match="outputTimestampType=TIMESTAMP_MICROS"):
            write_table(rows, lake_settings, INTERACTIONS)
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    root = Path(lake.table_uri(lake_settings, INTERACTIONS))
    assert not list(root.glob("spark-*"))  # refused before Spark wrote anything

    with pytest.raises(LakeError, match=r"nulls in non-nullable columns \['user_id'\]"):
        write_table(
            frame(with_nulls(DAYS[1]).set_column(0, "user_id", pa.array([None], pa.string()))),
            lake_settings,
            INTERACTIONS,
        )
    assert lake.version(lake_settings, INTERACTIONS) == 0


def test_spark_reaches_lake_locations_through_hadoop_paths(tmp_path: Path) -> None:
    assert hadoop_path("s3://bucket/lake/silver/events") == "s3a://bucket/lake/silver/events"
    assert hadoop_path("gs://bucket/lake") == "gs://bucket/lake"
    assert hadoop_path(str(tmp_path / "lake")) == f"file://{tmp_path}/lake"
    assert hadoop_path("file:///srv/lake") == "file:///srv/lake"
