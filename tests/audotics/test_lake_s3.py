"""The lake on an `s3://` location: moto's S3 server (`tests.s3_server`, the real protocol on
127.0.0.1) and the real delta-rs, pyarrow and DuckDB engine; and Spark's clear refusal of an
s3a:// path without Hadoop's S3A connector (pyspark ships none)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pyspark
import pytest

from audotics import lake
from audotics.lake import LakeError, tables
from audotics.lake import spark as spark_lake
from audotics.settings import Settings
from ingestion.bronze import land_bronze
from ingestion.refine import refine_day
from tests.audotics.test_lake import (  # the local lake's tests, run here on S3 as they are
    BY_DAY,
    DAY_1,
    DAY_2,
    FLAT,
    events,
    rows,
    test_a_missing_table_is_a_lake_error_naming_it,  # noqa: F401
    test_a_refused_write_is_a_lake_error_naming_the_table,  # noqa: F401
    test_concurrent_appends_all_land_with_their_own_versions,  # noqa: F401
    test_merge_creates_a_missing_table,  # noqa: F401
    test_merge_upserts_or_only_inserts_new_keys,  # noqa: F401
    test_newest_partition_reads_the_largest_partition_value,  # noqa: F401
    test_overwrite_with_predicate_replaces_only_that_partition,  # noqa: F401
    test_read_current_selects_the_current_rows_of_an_scd2_table,  # noqa: F401
    test_vacuum_keeps_recent_files_by_default,  # noqa: F401
    test_write_read_versions_and_time_travel,  # noqa: F401
)
from tests.ingestion.refine_support import DAY, FILE, GOOD, committed, line, write_catalog
from tests.s3_server import S3Server, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def lake_settings(make_settings, tmp_path: Path, s3: S3Server) -> Settings:
    """A lake in a fresh bucket; also the `lake_settings` of the tests imported above."""
    return make_settings(tmp_path, **s3.lake())


def stored_objects(s3: S3Server, settings: Settings, table: tables.Table) -> dict[str, bytes]:
    """The objects under the table's location (key: bytes), read by another client than the
    lake's."""
    bucket, _, prefix = lake.table_uri(settings, table).removeprefix("s3://").partition("/")
    client = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_the_lake_is_in_the_bucket_and_read_with_the_storage_options(
    lake_settings: Settings, s3: S3Server
) -> None:
    lake.write_arrow(lake_settings, BY_DAY, events(["e1", "e2"], DAY_1))
    lake.write_arrow(lake_settings, BY_DAY, events(["e3"], DAY_2))

    keys = stored_objects(s3, lake_settings, BY_DAY)
    assert any(key.endswith("_delta_log/00000000000000000001.json") for key in keys)
    assert sum(key.endswith(".parquet") for key in keys) == 2
    # dataset() reads the files from the server the storage options name, with their keys
    # (FileSystem.from_uri would have gone to AWS with the environment's credentials).
    scan = lake.dataset(lake_settings, BY_DAY)
    assert rows(scan.to_table(), "event_id", "event_date") == [
        ("e1", DAY_1),
        ("e2", DAY_1),
        ("e3", DAY_2),
    ]
    day_2 = lake.read_arrow(
        lake_settings, BY_DAY, columns=["event_id"], filter=pads.field("event_date") == DAY_2
    )
    assert day_2.to_pylist() == [{"event_id": "e3"}]
    # delta-rs takes option keys in any case, and so does dataset().
    lower = {key.lower(): value for key, value in lake_settings.storage_options.items()}
    same = lake_settings.model_copy(update={"storage_options": lower})
    assert lake.read_arrow(same, BY_DAY).num_rows == 3
    assert lake.partition_rows(lake_settings, BY_DAY, "event_date", DAY_1) == 2


def test_erasure_deletes_rows_then_vacuum_deletes_their_objects(
    lake_settings: Settings, s3: S3Server
) -> None:
    lake.write_arrow(lake_settings, FLAT, events(["e1", "e2"], DAY_1, user="erase-me"))
    lake.write_arrow(lake_settings, FLAT, events(["e3"], DAY_1, user="keep-me"))

    assert lake.delete_rows(lake_settings, FLAT, "user_id = 'erase-me'")["num_deleted_rows"] == 2
    assert len(lake.read_arrow(lake_settings, FLAT, version=1)) == 3  # until the vacuum
    assert len(lake.vacuum(lake_settings, FLAT, retention_hours=0)) == 1

    stored_users = {
        user
        for key, body in stored_objects(s3, lake_settings, FLAT).items()
        if key.endswith(".parquet")
        for user in pq.read_table(pa.BufferReader(body))["user_id"].to_pylist()
    }
    assert stored_users == {"keep-me"}
    assert rows(lake.read_arrow(lake_settings, FLAT), "user_id") == [("keep-me",)]


def test_a_landing_day_refined_on_the_s3_lake_gives_the_local_lakes_rows(
    make_settings, tmp_path: Path, s3: S3Server
) -> None:
    # One state folder and landing day; two lakes: the default local one and one in a bucket.
    local = make_settings(tmp_path)
    on_s3 = make_settings(tmp_path, **s3.lake())
    landing = Path(local.landing_root) / FILE
    landing.parent.mkdir(parents=True)
    lines = [
        line(),
        line(),  # a duplicate of the first
        line(event_id="2c3d4e5f-6071-4829-9bac-1d2e3f4a5b6c", ms_played=10**9),
        line(user_id="00000000-0000-4000-8000-000000000000"),
        b'{"event_id": ',
        line(event_id="3d4e5f60-7182-4930-8cbd-2e3f4a5b6c7d", ts="<drop>"),
        line(event_id="4e5f6071-8293-4a41-9dce-3f4a5b6c7d8e", ts=GOOD["ts"]),
    ]
    with gzip.open(landing, "wb") as out:
        out.write(b"\n".join(lines) + b"\n")

    results = {}
    for name, settings in (("local", local), ("s3", on_s3)):
        write_catalog(settings)
        assert land_bronze(settings, DAY, "run").bronze_rows == len(lines)
        results[name] = refine_day(settings, DAY, "run"), committed(settings)

    assert results["s3"] == results["local"]
    refined, _ = results["s3"]
    assert (refined.silver_rows, refined.quarantine_rows, refined.duplicate_rows) == (2, 4, 1)
    assert stored_objects(s3, on_s3, tables.SILVER_EVENTS)  # in the bucket


def test_spark_refuses_an_s3a_lake_without_the_s3a_connector_naming_what_to_add(
    lake_settings: Settings, spark
) -> None:
    jars = Path(pyspark.__file__).parent / "jars"
    assert list(jars.glob("hadoop-client-api-*.jar"))
    assert not list(jars.glob("hadoop-aws-*.jar")), "pyspark ships the S3A connector now"
    lake.write_arrow(lake_settings, FLAT, events(["e1"], DAY_1))
    hadoop = spark._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    expected = (
        rf"Spark cannot reach s3a://.*/scratch/events: .*org\.apache\.hadoop:hadoop-aws:{hadoop}"
        r".*software\.amazon\.awssdk:bundle.*spark\.jars\.packages.*spark\.hadoop\.fs\.s3a\.endpoint"
        r".*access\.key.*secret\.key.*path\.style\.access=true.*connection\.ssl\.enabled=false"
    )

    native = lake_settings.model_copy(update={"spark_delta_native": True})
    for settings in (lake_settings, native):
        with pytest.raises(LakeError, match=expected):
            spark_lake.read_table(spark, settings, FLAT)
    written = tables.Table("scratch", "spark_written", "test table", None)
    for settings in (lake_settings, native):
        with pytest.raises(LakeError, match=expected.replace("scratch/events", written.path)):
            spark_lake.write_table(spark.range(1), settings, written)
    assert not lake.exists(lake_settings, written)
