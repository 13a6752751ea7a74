"""The training pipeline on a real (temporary) lake: registry round trip, the gate, the gold
tables it publishes, and a rerun on the same data that finds its published model."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from audotics import lake
from audotics.lake import tables
from demo.synthetic import clustered_interactions
from feature_store.definitions import AUDIO_FEATURES, TRACK_FEATURES
from serving.publish import publish_recommendations
from spark_jobs.recommender import registry
from spark_jobs.recommender.data import index_interactions, load_snapshot
from spark_jobs.recommender.evaluation import evaluate_with_baseline
from spark_jobs.recommender.gate import GateRejected, decide
from spark_jobs.recommender.ranking import factor_scorer
from spark_jobs.recommender.train import (
    Verdict,
    gate_or_baseline,
    gate_step,
    holdout_split,
    recommend_step,
    register_step,
    run_pipeline,
)

AUDOTICS = str(Path(sys.executable).with_name("audotics"))
AS_OF = dt.date(2026, 11, 3)
N_USERS, N_TRACKS, N_ARTISTS = 300, 200, 20
COLD_USERS, NEW_TRACKS = 10, 5
SMALL_MODEL = {
    "recommender_tuning_trials": 3,
    "recommender_factors": 16,
    "recommender_top_n": 10,
    "recommender_max_per_artist": 2,
    "recommender_new_track_slots": 2,
    "recommender_similar_n": 5,
}


def utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def write_world(settings) -> None:
    """features/interactions as of AS_OF (3 days of listening), silver/tracks with 5 tracks
    nobody played yet and features/track_features with their audio features, silver/users
    with 10 users without any interaction."""
    users, items, _ = clustered_interactions(N_USERS, N_TRACKS, 12_000, clusters=10, seed=7)
    pairs = np.unique(users.astype(np.int64) * N_TRACKS + items)
    rng = np.random.default_rng(7)
    seconds = rng.integers(0, 3 * 86_400, len(pairs))
    last_ts = pa.array(
        [utc(AS_OF - dt.timedelta(days=2)) + dt.timedelta(seconds=int(s)) for s in seconds],
        pa.timestamp("us", tz="UTC"),
    )
    n = len(pairs)
    lake.write_arrow(
        settings,
        tables.INTERACTIONS,
        pa.table(
            {
                "user_id": [f"user-{u}" for u in pairs // N_TRACKS],
                "track_id": [f"track-{t}" for t in pairs % N_TRACKS],
                "as_of_date": pa.array([AS_OF] * n, pa.date32()),
                "confidence": rng.integers(1, 6, n).astype(np.float64),
                "plays": np.ones(n, np.int64),
                "skips": np.zeros(n, np.int64),
                "likes": np.zeros(n, np.int64),
                "playlist_adds": np.zeros(n, np.int64),
                "last_ts": last_ts,
            },
            schema=tables.INTERACTIONS.schema,
        ),
    )
    tracks = N_TRACKS + NEW_TRACKS
    track_ids = [f"track-{t}" for t in range(tracks)]
    lake.write_arrow(
        settings,
        tables.SILVER_TRACKS,
        pa.table(
            {
                "track_id": track_ids,
                "artist_id": [f"artist-{t % N_ARTISTS}" for t in range(tracks)],
                "genre": [("rock", "jazz", "pop")[t % 3] for t in range(tracks)],
                "is_current": [True] * tracks,
            }
        ),
    )
    audio = {
        "track_id": track_ids,
        "as_of_date": [AS_OF] * tracks,
        **{name: rng.random(tracks) for name in AUDIO_FEATURES},
    }
    schema = TRACK_FEATURES.arrow_schema()  # features the recommender does not read: null
    lake.write_arrow(
        settings,
        tables.TRACK_FEATURES,
        pa.table(
            {f.name: audio.get(f.name, pa.nulls(tracks, f.type)) for f in schema}, schema=schema
        ),
    )
    people = N_USERS + COLD_USERS
    lake.write_arrow(
        settings,
        tables.SILVER_USERS,
        pa.table(
            {
                "user_id": [f"user-{u}" for u in range(people)],
                "country": [("FR", "DE", "US")[u % 3] for u in range(people)],
                "is_current": [True] * people,
            }
        ),
    )


@pytest.fixture(scope="module")
def lake_settings(tmp_path_factory, make_settings):
    settings = make_settings(tmp_path_factory.mktemp("recommender-lake"), **SMALL_MODEL)
    write_world(settings)
    return settings


def test_registry_round_trip(tmp_path, make_settings) -> None:
    settings = make_settings(tmp_path)
    assert registry.get_published(settings) is None
    params = {"factors": 8, "alpha": 2.0}
    record = registry.new_candidate(AS_OF, 4, "ab12", "implicit", params, {"seconds": 1.5})
    assert record.model_version.startswith("als-20261103-") and len(record.model_version) == 19
    # The identity: engine, params, as-of date and data content; not the table version nor
    # the tuning's timings.
    assert registry.model_version("implicit", params, AS_OF, "ab12") == record.model_version
    assert {
        registry.model_version("implicit", params, AS_OF, "cd34"),
        registry.model_version("spark", params, AS_OF, "ab12"),
        registry.model_version("implicit", {**params, "alpha": 3.0}, AS_OF, "ab12"),
        registry.model_version("implicit", params, AS_OF + dt.timedelta(days=1), "ab12"),
    }.isdisjoint({record.model_version})
    registry.register(settings, record)
    registry.record_metrics(settings, record.model_version, {"ndcg@10": 0.3}, {"ndcg@10": 0.2})
    registry.set_status(settings, record.model_version, "published", "passed")
    stored = registry.get(settings, record.model_version)
    assert stored.params == {**params, "data_sha256": "ab12", "tuning": {"seconds": 1.5}}
    assert (stored.data_as_of, stored.data_version) == (AS_OF, 4)
    assert stored.metrics == {"ndcg@10": 0.3} and stored.baseline_metrics == {"ndcg@10": 0.2}
    assert (stored.status, stored.reason) == ("published", "passed")
    assert stored.status_changed_at >= stored.created_at
    assert registry.get_published(settings).model_version == record.model_version
    with pytest.raises(registry.RegistryError, match="not in models/registry"):
        registry.get(settings, "als-20260101-000000")


def test_gate_rule() -> None:
    baseline = {"ndcg@10": 0.20}
    assert not decide({"ndcg@10": 0.19}, baseline, None, metric="ndcg@10", margin=0.05).passed
    assert decide({"ndcg@10": 0.30}, baseline, None, metric="ndcg@10", margin=0.05).passed
    published = {"ndcg@10": 0.40}
    worse = decide({"ndcg@10": 0.37}, baseline, published, metric="ndcg@10", margin=0.05)
    assert not worse.passed and "below the published model" in worse.reason
    assert decide({"ndcg@10": 0.39}, baseline, published, metric="ndcg@10", margin=0.05).passed


def test_pipeline_publishes_recommendations(lake_settings) -> None:
    summary = run_pipeline(lake_settings)
    version = summary["model_version"]
    assert summary["status"] == "published"
    assert summary["metrics"]["ndcg@10"] > summary["baseline_metrics"]["ndcg@10"]
    record = registry.get_published(lake_settings)
    assert record.model_version == version and record.data_as_of == AS_OF

    in_version = pc.field("model_version") == version
    recs = lake.read_arrow(lake_settings, tables.RECOMMENDATIONS, filter=in_version).to_pandas()
    model_rows = recs[recs.source == "model"]
    assert model_rows.user_id.nunique() == N_USERS
    fallback = recs[recs.source == "fallback"]
    assert set(fallback.user_id) == {f"user-{u}" for u in range(N_USERS, N_USERS + COLD_USERS)}
    assert (recs.groupby("user_id")["rank"].apply(lambda r: sorted(r) == list(range(1, 11)))).all()

    interactions = lake.read_arrow(lake_settings, tables.INTERACTIONS).to_pandas()
    seen = set(zip(interactions.user_id, interactions.track_id, strict=True))
    assert not any(
        (u, t) in seen for u, t in zip(model_rows.user_id, model_rows.track_id, strict=True)
    )
    artist = recs.track_id.str.removeprefix("track-").astype(int) % N_ARTISTS
    assert recs.assign(artist=artist).groupby(["user_id", "artist"]).size().max() <= 2
    new_tracks = {f"track-{t}" for t in range(N_TRACKS, N_TRACKS + NEW_TRACKS)}
    assert set(model_rows.track_id) & new_tracks  # new tracks get their slots

    similar = lake.read_arrow(lake_settings, tables.SIMILAR_TRACKS, filter=in_version)
    assert similar.num_rows == 5 * len(similar["track_id"].unique())
    factors = lake.read_arrow(lake_settings, tables.ITEM_FACTORS, filter=in_version)
    assert len(factors["factors"][0]) == record.params["factors"]


def rejected_random_model(settings) -> registry.ModelRecord:
    """A candidate of random factors, evaluated: the gate rejects it."""
    snapshot = load_snapshot(settings, AS_OF)
    split = holdout_split(snapshot.interactions, AS_OF, 1, seed=42)
    rng = np.random.default_rng(0)
    random_model = factor_scorer(
        rng.normal(size=(snapshot.interactions.n_users, 8)),
        rng.normal(size=(snapshot.interactions.n_items, 8)),
    )
    results = evaluate_with_baseline(random_model, split, 10)
    record = registry.new_candidate(
        AS_OF, snapshot.data_version, snapshot.interactions.fingerprint, "random", {"factors": 8}
    )
    registry.register(settings, record)
    return registry.record_metrics(
        settings, record.model_version, results["model"], results["baseline"]
    )


def test_gate_rejects_random_factors_and_records_why(lake_settings) -> None:
    record = rejected_random_model(lake_settings)
    with pytest.raises(GateRejected, match="does not beat the popularity baseline"):
        gate_step(lake_settings, record.model_version)
    rejected = registry.get(lake_settings, record.model_version)
    assert rejected.status == "rejected"
    assert "ndcg@10" in rejected.reason and "baseline" in rejected.reason
    assert registry.get_published(lake_settings).model_version != record.model_version
    # Rejected with a published model: that one keeps serving, nothing new goes on.
    verdict = gate_or_baseline(lake_settings, record.model_version)
    assert verdict.version is None and "keeps serving" in verdict.rejected


def test_a_first_night_rejection_serves_the_popularity_baseline(isolated_platform):
    settings = isolated_platform("first-night", **SMALL_MODEL)
    write_world(settings)
    record = rejected_random_model(settings)

    verdict = gate_or_baseline(settings, record.model_version)
    assert verdict.version.startswith("popularity-20261103-")
    assert "rejected" in verdict.rejected and registry.get_published(settings) is None
    register_step(settings, verdict.version)
    written = recommend_step(settings, verdict.version)

    baseline = registry.get_published(settings)
    assert (baseline.model_version, baseline.engine) == (verdict.version, registry.POPULARITY)
    assert baseline.metrics == record.baseline_metrics  # scored on the same split
    assert gate_or_baseline(settings, record.model_version) == Verdict(
        None, f"{verdict.rejected.split('; ')[0]}; {verdict.version} keeps serving"
    )
    lists = lake.read_arrow(
        settings, tables.RECOMMENDATIONS, filter=pc.field("model_version") == verdict.version
    )
    assert written["recommendations"] == lists.num_rows
    assert len(lists["user_id"].unique()) == N_USERS + COLD_USERS  # every user has a list
    assert lists["source"].unique().to_pylist() == ["fallback"]
    similar = lake.read_arrow(
        settings, tables.SIMILAR_TRACKS, filter=pc.field("model_version") == verdict.version
    )
    assert similar.num_rows == written["similar_tracks"] == 5 * N_TRACKS  # played tracks
    same_genre = {f"track-{t}": t % 3 for t in range(N_TRACKS)}
    assert all(
        same_genre[row["track_id"]] == same_genre[row["similar_track_id"]]
        and row["track_id"] != row["similar_track_id"]
        for row in similar.to_pylist()
    )
    # What publishing reads of the catalog beyond what training does: titles and names.
    tracks = lake.read_arrow(settings, tables.SILVER_TRACKS)
    titles = pa.array([f"Song {t}" for t in range(tracks.num_rows)])
    lake.write_arrow(settings, tables.SILVER_TRACKS, tracks.append_column("title", titles),
                     mode="overwrite", schema_mode="merge")  # fmt: skip
    artists = [f"artist-{a}" for a in range(N_ARTISTS)]
    names = {"name": [a.title() for a in artists], "is_current": [True] * N_ARTISTS}
    lake.write_arrow(settings, tables.SILVER_ARTISTS, pa.table({"artist_id": artists, **names}))
    served = publish_recommendations(settings)  # what the nightly publishes next
    assert (served.model_version, served.users, served.tracks) == (
        verdict.version, N_USERS + COLD_USERS, N_TRACKS,
    )  # fmt: skip


def test_a_rerun_on_the_same_rows_finds_its_published_model(tmp_path, make_settings, env_for):
    """`audotics train` twice on one lake: the second run trains the same version, finds it
    published and changes nothing, although the feature job rewrote the partition meanwhile
    (same rows, another order: a new table version)."""
    settings = make_settings(tmp_path, **SMALL_MODEL)
    write_world(settings)
    env = env_for(settings) | {f"AUDOTICS_{k.upper()}": str(v) for k, v in SMALL_MODEL.items()}

    def train() -> dict:
        done = subprocess.run(
            [AUDOTICS, "train"], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout)

    first = train()
    rows = lake.read_arrow(settings, tables.INTERACTIONS)
    lake.write_arrow(
        settings,
        tables.INTERACTIONS,
        rows.take(pa.array(np.arange(rows.num_rows)[::-1])),
        mode="overwrite",
        predicate=f"as_of_date = '{AS_OF}'",
    )
    outputs = (tables.RECOMMENDATIONS, tables.SIMILAR_TRACKS, tables.ITEM_FACTORS)
    output_versions = [lake.version(settings, table) for table in outputs]
    second = train()

    version = first["model_version"]
    assert (first["status"], first["unchanged"]) == ("published", False)
    assert second["model_version"] == version
    assert (second["status"], second["unchanged"], second["written"]) == ("published", True, {})
    assert second["registry_version"] == first["registry_version"]  # no registry write
    assert [lake.version(settings, table) for table in outputs] == output_versions  # unwritten
    in_registry = lake.read_arrow(
        settings, tables.MODEL_REGISTRY, filter=pc.field("model_version") == version
    )
    assert in_registry.num_rows == 1
    assert registry.get_published(settings).model_version == version


def test_a_one_day_history_is_held_out_per_user_instead_of_by_time() -> None:
    """A night on a lake of one day (bench/bench_nightly.py) has no day before its hold-out."""
    day = int(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC).timestamp())
    users, items = np.divmod(np.arange(200), 20)  # 10 users x 20 items, all on one day
    data = index_interactions(
        pa.table(
            {
                "user_id": [f"u{u}" for u in users],
                "item_id": [f"i{i}" for i in items],
                "weight": np.ones(200),
                "timestamp": day + np.arange(200),
            }
        )
    )
    split = holdout_split(data, dt.date(2026, 11, 1), days=1, seed=42)
    assert len(split.train.weights) == 160 and len(split.test.weights) == 40
    assert set(split.test.users.tolist()) == set(range(10))  # every user on both sides


def test_the_spark_engine_trains_and_evaluates_on_the_lake(spark, tmp_path, make_settings) -> None:
    from spark_jobs.recommender.train import evaluate_step, train_step

    settings = make_settings(tmp_path, **{**SMALL_MODEL, "recommender_tuning_trials": 1})
    write_world(settings)
    version = train_step(settings, AS_OF, "spark")
    assert registry.get(settings, version).engine == "spark"
    results = evaluate_step(settings, version)
    assert results["model"]["ndcg@10"] > results["baseline"]["ndcg@10"] > 0
    assert lake.read_arrow(settings, tables.USER_FACTORS).num_rows > 0
