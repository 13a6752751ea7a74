"""The DAG chain of the project's tests: every DAG in the order their Assets chain them, on a
small generated world, each stage's outputs checked, not only the absence of errors. Shared by
every way of running a DAG: `airflow dags test` (test_dags_end_to_end.py) and the
CeleryExecutor (test_airflow_celery.py), which must also give the same tables."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable

import pyarrow.dataset as ds
import pytest
import redis

from audotics import db, lake
from audotics.lake import tables
from audotics.settings import Settings
from demo.world.generate import generate_world
from demo.world.manifest import WorldManifest
from feature_store.online import get_online_features
from serving import keys
from tests.support import environment_for

# The warehouse DAG's freshness checks and dbt tests are covered by `dbt build` elsewhere; here
# its load task and every model run for real, the checks are marked successful.
WAREHOUSE_SKIP = r".*(\.test|_test|_source)$"
WORLD = dict(
    world_users=120, world_artists=15, world_tracks=250, world_days=3,
    world_events_per_day=1_500, world_bad_record_rate=0.03,
    # An A/A experiment: analysed and decided like any, without changing how people listen (a
    # true effect on 120 users tips the ALS model below the popularity baseline at the gate).
    world_experiment_effect=0.0,
)  # fmt: skip

# The tables two runs of the chain on the same world must hold alike (tests.support.
# comparable_rows): the model's tables follow a time-budgeted search, so they may not.
COMPARED = (
    tables.BRONZE_EVENTS, tables.QUARANTINE_EVENTS, tables.SILVER_EVENTS,
    tables.USER_FEATURES, tables.TRACK_FEATURES, tables.INTERACTIONS,
)  # fmt: skip

# Runs one DAG to success: (dag_id, logical day, conf or None, task ids to mark successful).
RunDag = Callable[[str, str, dict | None, str | None], None]


def make_world(
    isolated_platform: Callable[..., Settings], name: str, **overrides: object
) -> tuple[Settings, WorldManifest]:
    """The chain's world (WORLD, with `overrides`) on a platform instance of its own."""
    settings = isolated_platform(name, **{**WORLD, **overrides})
    return settings, generate_world(settings, progress=False)


def run_the_chain(
    settings: Settings, manifest: WorldManifest, run_dag: RunDag, *, warehouse: bool = True
) -> None:
    """Every DAG in Asset order over the world's days, each stage's outputs checked (without
    `warehouse`, every DAG but the last)."""
    days = sorted(manifest.days)
    for day in days:
        run_dag("ingest_events", day, None, None)
    runs = lake.read_arrow(settings, tables.INGEST_RUNS).to_pylist()
    assert sorted(r["interval_start"].date().isoformat() for r in runs) == days
    for run in runs:
        truth = manifest.days[run["interval_start"].date().isoformat()]
        assert run["status"] == "success"
        assert (run["input_records"], run["silver_rows"]) == (truth.lines, truth.valid_events)

    as_of = days[-1]
    after = (dt.date.fromisoformat(as_of) + dt.timedelta(days=1)).isoformat()
    conf = {"as_of": as_of}
    run_dag("build_features", after, conf, None)
    on_day = ds.field("as_of_date") == dt.date.fromisoformat(as_of)
    for table in (tables.USER_FEATURES, tables.TRACK_FEATURES, tables.INTERACTIONS):
        assert lake.read_arrow(settings, table, filter=on_day).num_rows > 0, table
    user_features = lake.read_arrow(settings, tables.USER_FEATURES, filter=on_day)
    some_user = user_features["user_id"][0].as_py()
    online = get_online_features([some_user], ["user_features:plays_28d"], settings=settings)
    assert online[some_user]["user_features:plays_28d"] is not None

    run_dag("train_recommender", after, conf, None)
    [model] = lake.read_arrow(settings, tables.MODEL_REGISTRY).to_pylist()
    assert model["status"] == "published", model["reason"]
    assert model["data_as_of"] == dt.date.fromisoformat(as_of)  # the snapshot just built
    metrics = json.loads(model["metrics"])
    assert {"precision@10", "recall@10", "ndcg@10"} <= set(metrics)
    recommendations = lake.read_arrow(
        settings, tables.RECOMMENDATIONS, filter=ds.field("model_version") == model["model_version"]
    )
    assert recommendations.num_rows > 0

    run_dag("publish_recommendations", after, None, None)
    client = redis.Redis.from_url(settings.redis_dsn)
    assert client.get(keys.CURRENT).decode() == model["model_version"]
    published_users = len(set(recommendations["user_id"].to_pylist()))
    assert client.hlen(keys.users_key(model["model_version"])) == published_users

    if not warehouse:
        return
    run_dag("warehouse", after, None, WAREHOUSE_SKIP)
    with db.connect(settings) as conn:
        days_in_marts = conn.execute("select count(*) from marts.mart_daily_kpis").fetchone()[0]
        evaluated = dict(
            conn.execute(
                "select metric_name, metric_value::float8 from marts.mart_model_evaluations "
                "where model_version = %s",
                (model["model_version"],),
            ).fetchall()
        )
    assert days_in_marts >= len(days)
    assert evaluated["ndcg@10"] == pytest.approx(metrics["ndcg@10"])  # registry -> mart


def dags_test(env: dict, dag_id: str, day: str, *extra: str) -> str:
    result = subprocess.run(
        ["airflow", "dags", "test", dag_id, day, *extra],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{dag_id} {day}:\n{output[-4000:]}"
    assert "state=success" in output, f"{dag_id} {day} did not succeed:\n{output[-4000:]}"
    return output


def run_with_dags_test(isolated_platform: Callable[..., Settings], env: dict[str, str]) -> Settings:
    """The chain through `airflow dags test` on a world of its own (`env`: Airflow's); its
    settings."""
    settings, manifest = make_world(isolated_platform, "dags")
    env = {**environment_for(settings), **env}

    def run_dag(dag_id: str, day: str, conf: dict | None, mark_success: str | None) -> None:
        extra = ["--conf", json.dumps(conf)] if conf else []
        extra += ["--mark-success-pattern", mark_success] if mark_success else []
        dags_test(env, dag_id, day, *extra)

    run_the_chain(settings, manifest, run_dag)
    return settings
