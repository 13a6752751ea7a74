"""`make run` end to end on a tiny generated world (real PostgreSQL, Redis, Spark, Delta, dbt),
then GDPR erasure of one user across every store."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import redis

from audotics import db, lake
from audotics.lake import tables
from demo.world.generate import load_manifest
from feature_store.online import get_online_features
from orchestration.gdpr import USER_COLUMN_TABLES, erase_user, subject_hash
from orchestration.nightly import run_pipeline
from serving import keys


@pytest.fixture(scope="module")
def nightly(isolated_platform):
    settings = isolated_platform(
        "nightly", world_users=120, world_artists=15, world_tracks=250, world_days=3,
        world_events_per_day=1_500, world_bad_record_rate=0.03,
    )  # fmt: skip
    return settings, run_pipeline(settings)


def test_the_nightly_run_fills_every_stage(nightly) -> None:
    settings, ctx = nightly
    report = ctx.report
    manifest = load_manifest(settings)
    assert report["ingest"]["input_records"] == sum(manifest.files.values())
    assert report["ingest"]["silver_rows"] == sum(d.valid_events for d in manifest.days.values())

    for table in ("user_features", "track_features", "interactions"):
        assert report["features"][table] > 0

    train = report["train"]
    assert train["status"] == "published", train
    assert set(train["metrics"]) >= {"precision@10", "recall@10", "ndcg@10"}

    publish = report["publish"]
    client = redis.Redis.from_url(settings.redis_dsn)
    assert client.get(keys.CURRENT).decode() == publish["model_version"] == train["model_version"]
    assert publish["users"] == client.hlen(keys.users_key(publish["model_version"])) > 0
    assert "curl" in report and "/v1/users/" in report["curl"]

    with db.connect(settings) as conn:
        plays = conn.execute("select sum(plays) from marts.mart_daily_kpis").fetchone()[0]
        silver_plays = pc.sum(
            pc.equal(lake.read_arrow(settings, tables.SILVER_EVENTS).column("event_type"), "play")
        ).as_py()
        assert plays == silver_plays
        assert conn.execute("select count(*) from marts.mart_model_evaluations").fetchone()[0] >= 1


def _files_mentioning(root: Path, user_id: str) -> list[str]:
    """Every Parquet file under `root` (referenced by a Delta log or not) holding the user."""
    found = []
    for path in root.rglob("*.parquet"):
        table = pq.read_table(path)
        for name in table.column_names:
            column = table.column(name)
            if (
                is_text(column.type)
                and pc.any(pc.match_substring(column.cast("string"), user_id)).as_py()
            ):
                found.append(str(path))
                break
    return found


def is_text(kind: pa.DataType) -> bool:
    # Files rewritten by a delta-rs DELETE store view types.
    return any(
        check(kind)
        for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view,
                      pa.types.is_binary, pa.types.is_binary_view)
    )  # fmt: skip


def test_gdpr_erasure_removes_one_user_everywhere_and_nobody_else(nightly) -> None:
    settings, _ = nightly
    listeners = lake.read_arrow(settings, tables.SILVER_EVENTS, columns=["user_id"])
    user_id = listeners.column("user_id")[0].as_py()  # has events, hence rows in every store
    lake_root = Path(settings.lake_root)
    assert _files_mentioning(lake_root / tables.SILVER_EVENTS.path, user_id)  # there before

    def others(table: tables.Table, column: str) -> int:
        rows = lake.read_arrow(settings, table, columns=[column])
        return rows.num_rows - pc.sum(pc.equal(rows.column(column), user_id)).as_py()

    keyed = [(table, column) for table in USER_COLUMN_TABLES for column in table.user_columns]
    assert len(keyed) >= 7  # silver events, users, playlists; features; factors; gold
    before = {pair: others(*pair) for pair in keyed}

    report = erase_user(settings, user_id)

    assert report.removed["silver/events"] > 0 and report.removed["landing"] > 0
    assert report.removed["redis/recommendations"] >= 1
    assert _files_mentioning(lake_root, user_id) == []  # the bytes are gone, old files too
    for path in Path(settings.landing_root).glob("events/date=*/*.jsonl.gz"):
        assert user_id.encode() not in gzip.decompress(path.read_bytes())
    for pair, count in before.items():
        assert others(*pair) == count, pair  # everyone else's rows are all still there

    with db.connect(settings) as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where column_name in ('user_id', 'owner_user_id') and table_schema <> 'app'"
        ).fetchall()
        for schema, table, column in columns:
            left = conn.execute(
                f'select count(*) from "{schema}"."{table}" where "{column}"::text = %s',
                (user_id,),
            ).fetchone()[0]
            assert left == 0, f"{schema}.{table} still holds the user"

    assert get_online_features([user_id], ["user_features:plays_28d"], settings=settings) == {
        user_id: {"user_features:plays_28d": None}
    }
    client = redis.Redis.from_url(settings.redis_dsn)
    version = client.get(keys.CURRENT).decode()
    assert client.hget(keys.users_key(version), user_id) is None

    audit = lake.read_arrow(
        settings, tables.GDPR_REQUESTS, filter=ds.field("request_id") == report.request_id
    ).to_pylist()
    assert [a["subject_sha256"] for a in audit] == [subject_hash(user_id)]
    assert user_id not in str(audit)
