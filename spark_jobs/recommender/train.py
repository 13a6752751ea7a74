"""The nightly training pipeline on the lake, one function per DAG task:

train -> evaluate -> gate -> register -> recommend

- train: snapshot the interactions view as of a date (pinned table version); tune on the
  training window only (validation = its last hold-out days); fit on ALL the snapshot with
  the chosen params; write the factors; register a `candidate`.
- evaluate: refit the same params on the training window (before T = end of day as_of minus
  the hold-out days) and score the test window [T, end of as_of) beside the popularity
  baseline; record both in the registry. (The published model also saw the test window: these
  metrics measure its recipe on the freshest data it could not have seen.)
- gate: let the model through, or reject it (recorded with the reason). A rejection is a
  verdict, not a failure: the published model keeps serving; when no model was ever published
  (a first night), the popularity baseline goes on in its place, as a version of its own
  (`popularity-YYYYMMDD-<hash>`: lists by country and taste for every user, and as similar
  tracks the most played of the same genre), so serving always has something to serve.
- register: mark the model (or the baseline) `published`.
- recommend: write gold/recommendations and gold/similar_tracks for the version.

A model's version is its identity (engine, chosen params, as-of date, content of the data:
`registry.model_version`), and tuning is seeded, so a rerun on the same data trains the same
version. When that version is already published, every step is a no-op that says so: no
refit, no new registry row or status change, no rewrite of gold (unless gold lacks it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import click
import numpy as np
import pyarrow as pa

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings, get_settings
from spark_jobs.recommender import registry, store
from spark_jobs.recommender.batch import (
    ItemSpace,
    ListOptions,
    fallback_lists,
    list_rows,
    model_lists,
    popular_in_genre_rows,
    similar_tracks_rows,
)
from spark_jobs.recommender.data import Interactions, InteractionsError, load_snapshot
from spark_jobs.recommender.engines import ALSParams, engine_name, make_engine
from spark_jobs.recommender.evaluation import evaluate_with_baseline
from spark_jobs.recommender.gate import PASSED, GateDecision, GateRejected, decide
from spark_jobs.recommender.inputs import read_tracks, read_users
from spark_jobs.recommender.ranking import factor_scorer
from spark_jobs.recommender.splits import DAY_SECONDS, Split, stratified_split, temporal_split
from spark_jobs.recommender.tuning import random_search

log = logging.getLogger(__name__)


def holdout_split(data: Interactions, as_of: dt.date, days: int, seed: int) -> Split:
    """Train before T, test on [T, end of `as_of`), T = end of `as_of` minus `days` days."""
    end = int(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp())
    return _temporal_or_stratified(data, end - days * DAY_SECONDS, seed, "hold-out")


def validation_split(train: Interactions, days: int, seed: int) -> Split:
    """The training window's own last `days` days."""
    end = int(train.timestamps.max()) + 1
    return _temporal_or_stratified(train, end - days * DAY_SECONDS, seed, "validation")


def _temporal_or_stratified(data: Interactions, start: int, seed: int, purpose: str) -> Split:
    """The temporal split at `start`; a history too short for one (a young lake, a one-day
    night) falls back to a per-user stratified 80/20, logged, so it can still be trained."""
    try:
        return temporal_split(data, start)
    except InteractionsError as exc:
        log.warning("temporal %s impossible (%s): stratified 80/20 instead", purpose, exc)
        return stratified_split(data, 0.8, seed)


def _spark_split(spark: Any, split: Split) -> Any:
    """A numpy split as DataFrames with the same indices (the lake steps still load in numpy)."""
    from spark_jobs.recommender.spark_data import SparkSplit, from_interactions

    return SparkSplit(from_interactions(spark, split.train), from_interactions(spark, split.test))


def _spark_trial(engine: Any, split: Split, params: ALSParams, k: int) -> float:
    from spark_jobs.recommender.spark_evaluation import fit_and_score

    return fit_and_score(engine, _spark_split(engine.spark, split), params, k)


def _factors(als: Any, data: Interactions, params: ALSParams) -> tuple[np.ndarray, np.ndarray]:
    """The fitted factors as arrays (for the lake's factor tables and the numpy gold lists)."""
    if als.name != "spark":
        model = als.fit(data.matrix(), params)
        return model.user_factors, model.item_factors
    from spark_jobs.recommender.spark_data import from_interactions

    model = als.fit(from_interactions(als.spark, data), params)

    def dense(frame: Any, rows: int) -> np.ndarray:
        table = frame.toArrow()
        result = np.zeros((rows, params.factors), dtype=np.float32)
        features = table["features"].combine_chunks().flatten().to_numpy()
        result[table["id"].to_numpy()] = features.reshape(table.num_rows, params.factors)
        return result

    factors = dense(model.user_factors, data.n_users), dense(model.item_factors, data.n_items)
    model.release()
    return factors


def train_step(settings: Settings, as_of: dt.date | None = None, engine: str | None = None) -> str:
    """Tune, fit on the snapshot, store the factors, register a candidate; its version. A
    version already published is returned as it is."""
    snapshot = load_snapshot(settings, as_of)
    data = snapshot.interactions
    days, seed = settings.recommender_holdout_days, settings.recommender_seed
    name = engine_name(settings, len(data), engine)
    als = make_engine(name, settings)
    tuning = random_search(
        als,
        holdout_split(data, snapshot.as_of, days, seed).train,
        lambda train: validation_split(train, days, seed),
        ALSParams.from_settings(settings),
        k=settings.recommender_k,
        trials=min(settings.recommender_tuning_trials, getattr(als, "max_trials", 10**9)),
        budget_seconds=settings.recommender_tuning_budget_seconds,
        **({"space": als.search_space, "score": _spark_trial} if name == "spark" else {}),
    )
    record = registry.new_candidate(
        snapshot.as_of,
        snapshot.data_version,
        data.fingerprint,
        name,
        tuning.best.as_dict(),
        tuning.summary(),
    )
    existing = registry.find(settings, record.model_version)
    if existing is not None and existing.published:
        log.info("%s is already published: same engine, params and data", record.model_version)
        return record.model_version
    started = time.perf_counter()
    user_factors, item_factors = _factors(als, data, tuning.best)
    store.write_factors(
        settings, record.model_version, data.user_ids, user_factors, data.item_ids, item_factors
    )
    registry.register(settings, record)
    log.info("trained %s (%s) in %.1fs", record.model_version, name, time.perf_counter() - started)
    return record.model_version


def evaluate_step(settings: Settings, version: str) -> dict[str, dict[str, float]]:
    """Hold-out metrics of the model's recipe and of the baseline, recorded in the registry
    (a published model's are the ones it was published with)."""
    record = registry.get(settings, version)
    if record.published:
        return {"model": record.metrics, "baseline": record.baseline_metrics}
    snapshot = load_snapshot(settings, record.data_as_of, record.data_version)
    split = holdout_split(
        snapshot.interactions,
        snapshot.as_of,
        settings.recommender_holdout_days,
        settings.recommender_seed,
    )
    params = ALSParams.from_dict(record.params)
    als = make_engine(record.engine, settings)
    if record.engine == "spark":
        from spark_jobs.recommender.spark_data import from_interactions
        from spark_jobs.recommender.spark_evaluation import evaluate_with_baseline as on_spark

        model = als.fit(from_interactions(als.spark, split.train), params)
        results = on_spark(model, _spark_split(als.spark, split), settings.recommender_k)
        model.release()
    else:
        model = als.fit(split.train.matrix(), params)
        scorer = factor_scorer(model.user_factors, model.item_factors)
        results = evaluate_with_baseline(scorer, split, settings.recommender_k)
    registry.record_metrics(settings, version, results["model"], results["baseline"])
    return results


def gate_step(settings: Settings, version: str) -> GateDecision:
    """Let the model through, or record why not and raise GateRejected. A published model
    passed already: its status stays."""
    record = registry.get(settings, version)
    if record.published:
        return GateDecision(True, record.reason.removeprefix(PASSED))
    published = registry.get_published(settings)
    decision = decide(
        record.metrics,
        record.baseline_metrics,
        published.metrics if published else None,
        metric=f"{settings.recommender_gate_metric}@{settings.recommender_k}",
        margin=settings.recommender_gate_margin,
        published_version=published.model_version if published else None,
    )
    if not decision.passed:
        registry.set_status(settings, version, "rejected", decision.reason)
        raise GateRejected(f"model {version} rejected, not published: {decision.reason}")
    registry.set_status(settings, version, "candidate", PASSED + decision.reason)
    return decision


@dataclass(frozen=True)
class Verdict:
    version: str | None  # what register and recommend go on with; None: nothing new serves
    rejected: str | None = None  # why the candidate was rejected; None: it passed


def gate_or_baseline(settings: Settings, version: str) -> Verdict:
    """The gate's verdict on `version`, and what goes on: the candidate if it passed; if not,
    nothing while a published model keeps serving, or else the popularity baseline."""
    try:
        gate_step(settings, version)
        return Verdict(version)
    except GateRejected as exc:
        rejected = str(exc)
    published = registry.get_published(settings)
    if published is not None:
        return Verdict(None, f"{rejected}; {published.model_version} keeps serving")
    reason = f"{PASSED}no model published yet and {version} was rejected: the popularity "
    reason += "baseline serves until a model passes the gate"
    baseline = registry.popularity_baseline(registry.get(settings, version), reason)
    if registry.find(settings, baseline.model_version) is None:
        registry.register(settings, baseline)
    log.warning("%s; first night: %s serves", rejected, baseline.model_version)
    return Verdict(baseline.model_version, f"{rejected}; {baseline.model_version} serves")


def register_step(settings: Settings, version: str) -> registry.ModelRecord:
    record = registry.get(settings, version)
    if record.published:
        return record
    if not record.reason.startswith(PASSED):
        raise GateRejected(
            f"model {version} has not passed the gate ({record.status}: {record.reason})"
        )
    return registry.set_status(settings, version, "published", record.reason)


def recommend_step(settings: Settings, version: str) -> dict[str, int]:
    """Write the model's gold/recommendations and gold/similar_tracks partitions; returns the
    rows written, none when both partitions are there already (a rerun)."""
    gold = (tables.RECOMMENDATIONS, tables.SIMILAR_TRACKS)
    if all(store.partition_rows(settings, table, version) for table in gold):
        log.info("gold already holds %s: not rewritten", version)
        return {}
    record = registry.get(settings, version)
    data = load_snapshot(settings, record.data_as_of, record.data_version).interactions
    tracks = read_tracks(settings, record.data_as_of)
    users = read_users(settings, tracks)
    space = ItemSpace.build(data.item_ids, tracks)
    options = ListOptions(
        n=settings.recommender_top_n,
        exclude_seen=settings.recommender_exclude_seen,
        max_per_artist=settings.recommender_max_per_artist,
        new_track_slots=settings.recommender_new_track_slots,
    )
    if record.engine == registry.POPULARITY:
        cold_users, ids, scores = fallback_lists(data, users, space, options, everyone=True)
        recommendations = list_rows(cold_users, ids, scores, space, "fallback")
        similar = popular_in_genre_rows(data, space, settings.recommender_similar_n)
    else:
        user_factors = store.read_factors(settings, version, tables.USER_FACTORS, data.user_ids)
        item_factors = store.read_factors(settings, version, tables.ITEM_FACTORS, data.item_ids)
        ids, scores = model_lists(data, user_factors, item_factors, space, options)
        cold_users, cold_ids, cold_scores = fallback_lists(data, users, space, options)
        recommendations = pa.concat_tables(
            [
                list_rows(data.user_ids, ids, scores, space, "model"),
                list_rows(cold_users, cold_ids, cold_scores, space, "fallback"),
            ]
        )
        similar = similar_tracks_rows(item_factors, space, settings.recommender_similar_n)
    store.replace_partition(settings, tables.RECOMMENDATIONS, version, recommendations)
    store.replace_partition(settings, tables.SIMILAR_TRACKS, version, similar)
    return {
        "recommendations": recommendations.num_rows,
        "fallback_users": len(cold_users),
        "similar_tracks": similar.num_rows,
    }


def run_pipeline(
    settings: Settings, as_of: dt.date | None = None, engine: str | None = None
) -> dict[str, Any]:
    """All steps in order, as the DAG runs them. `unchanged`: the model was published before
    (a rerun on the same data); `serving`: the version published now (the model, or on a first
    night the baseline), None when a rejected model leaves the published one serving."""
    version = train_step(settings, as_of, engine)
    unchanged = registry.get(settings, version).published
    evaluate_step(settings, version)
    verdict = gate_or_baseline(settings, version)
    written = {}
    if verdict.version is not None:
        register_step(settings, verdict.version)
        written = recommend_step(settings, verdict.version)
    record = registry.get(settings, version)
    return {
        "model_version": version,
        "status": record.status,
        "unchanged": unchanged,
        "reason": verdict.rejected or record.reason,
        "serving": verdict.version,
        "metrics": record.metrics,
        "baseline_metrics": record.baseline_metrics,
        "params": record.params,
        "written": written,
        "registry_version": lake.version(settings, registry.REGISTRY),
    }


@click.command("train")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Default: latest.")
@click.option("--engine", type=click.Choice(["auto", "implicit", "spark"]), default=None)
def train_command(as_of: dt.datetime | None, engine: str | None) -> None:
    """Train, evaluate, gate, register and recommend on the lake (prints a JSON summary)."""
    summary = run_pipeline(get_settings(), as_of.date() if as_of else None, engine)
    click.echo(json.dumps(summary, default=str))
