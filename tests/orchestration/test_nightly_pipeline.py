"""`make run` end to end on a tiny generated world (real PostgreSQL, Redis, Spark, Delta, dbt),
the same nightly on a Spark standalone cluster of two workers, then GDPR erasure of one user
across every store."""

from __future__ import annotations

import gzip
import re
import subprocess
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
from orchestration.spark_cluster import local_cluster
from serving import keys
from tests.support import comparable_rows, free_port

WORLD = {
    "world_users": 120, "world_artists": 15, "world_tracks": 250, "world_days": 3,
    "world_events_per_day": 1_500, "world_bad_record_rate": 0.03,
    "world_experiment_effect": 0.0,  # as tests/dags/chain.py's WORLD: an A/A experiment
}  # fmt: skip
# The tables Spark writes or that follow from them, compared between a local and a cluster run.
COMPARED = (
    tables.BRONZE_EVENTS, tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS,
    tables.USER_FEATURES, tables.TRACK_FEATURES, tables.INTERACTIONS,
)  # fmt: skip


@pytest.fixture(scope="module")
def nightly(isolated_platform):
    settings = isolated_platform("nightly", **WORLD)
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


def test_a_second_run_prints_a_line_per_stage_and_the_report_and_logs_the_rest(
    nightly, env_for
) -> None:
    settings, _ = nightly
    world = {f"AUDOTICS_{name.upper()}": str(value) for name, value in WORLD.items()}
    done = subprocess.run(
        ["audotics", "run"], env={**env_for(settings), **world},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = (done.stderr + done.stdout).splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    stages = [line for line in lines if re.match(r"\[\d/\d\] [a-z ]+ done in [\d.]+s: ", line)]
    assert len(stages) == 9, "\n".join(lines)
    assert "publish done in" in stages[5] and "unchanged" in stages[5]  # nothing new to publish
    report = lines[lines.index(stages[-1]) + 1 :]
    assert all(not line or line.startswith(("Audotics nightly run", "  ", "Where to look next"))
               for line in report), "\n".join(report)  # fmt: skip
    for noise in ("WARN", "Traceback", "RefineResult(", "datetime.datetime(", "py4j", "log4j"):
        assert noise not in done.stderr + done.stdout, noise
    # What the console leaves out is in the run's log file, the JVM's output included.
    [log_line] = [line for line in report if line.startswith("  log:")]
    log_file = Path(log_line.split(":", 1)[1].strip())
    assert log_file.parent == settings.state_dir / "logs"
    logged = log_file.read_text()
    assert "refined landing" in logged and "dbt: " in logged and "log4j" in logged


def test_the_nightly_on_a_standalone_cluster_gives_the_local_tables(
    nightly, isolated_platform, env_for
) -> None:
    local, _ = nightly
    ports = {"spark_cluster_port": free_port(), "spark_cluster_ui_port": free_port()}
    settings = isolated_platform("nightly_cluster", **WORLD, **ports)
    world = {f"AUDOTICS_{name.upper()}": str(value) for name, value in WORLD.items()}
    with local_cluster(settings, workers=2) as cluster:
        env = {**env_for(settings), **world, "AUDOTICS_SPARK_MASTER": cluster.master_url}
        done = subprocess.run(
            ["audotics", "run"], env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        state = cluster.state()

    workers = state["workers"]
    assert [worker["state"] for worker in workers] == ["ALIVE", "ALIVE"]
    applications = state["completedapps"]
    assert not state["activeapps"] and applications
    assert {app["state"] for app in applications} == {"FINISHED"}
    assert any("features" in app["name"] for app in applications), applications
    for table in COMPARED:
        assert comparable_rows(settings, table) == comparable_rows(local, table), table


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
