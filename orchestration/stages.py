"""The pipeline declared once: every stage, in the order `audotics run` runs them, with the DAG
that schedules it, the catalog tables it reads and writes, the tables whose changes trigger it,
and the function `audotics run` calls.

`orchestration.nightly` runs this list in order; each DAG file takes its schedule and its
outlets from its stage here (`orchestration.airflow_support.schedule` / `outlets`), and
`tests/test_stages.py` checks the DAGs against it and that every table a stage reads is written
by an earlier stage, so the DAGs, `make run` and this list cannot drift apart.

Imported when Airflow parses the DAG files: only the catalog at module level; each stage's run
function imports its own (Spark, pandas, dbt, ...) modules when called.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings

# Inputs no stage writes: the apps' landing files and operational database (the demo world
# stands in for the apps on a laptop).
LANDING = "landing/events"
APP_DATABASE = "app"
EXTERNAL_INPUTS = (LANDING, APP_DATABASE)


@dataclass
class RunContext:
    """One `audotics run`: what the stages share while it runs, and the report it prints."""

    settings: Settings
    run_id: str
    report: dict[str, Any] = field(default_factory=dict)
    as_of: dt.date | None = None  # the snapshot the features stage built; training uses it


@dataclass(frozen=True)
class Trigger:
    """What schedules a stage's DAG: a change to all of `tables` (since its last run) or to any."""

    tables: tuple[Table, ...]
    mode: Literal["all", "any"] = "all"


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext], str]  # what `audotics run` calls; returns a one-line summary
    dag_id: str | None = None  # None: run-only (`audotics run`), no DAG
    reads: tuple[Table, ...] = ()  # catalog tables written by earlier stages
    writes: tuple[Table, ...] = ()  # catalog tables written (the DAG's outlets)
    inputs: tuple[str, ...] = ()  # external inputs read (EXTERNAL_INPUTS)
    trigger: Trigger | None = None  # None: a time schedule (the DAG says which), or run-only


# --- what `audotics run` calls ------------------------------------------------------------------


def _services(ctx: RunContext) -> str:
    from audotics import services

    return "; ".join(s.line().split("  ")[0] for s in services.up(ctx.settings))


def _world(ctx: RunContext) -> str:
    from demo.world.errors import WorldError
    from demo.world.generate import generate_world, load_manifest
    from demo.world.spec import WorldSpec

    try:
        manifest = load_manifest(ctx.settings)
    except WorldError:
        manifest = None
    if (
        manifest is not None
        and manifest.settings == WorldSpec.from_settings(ctx.settings).as_settings()
    ):
        verb = "found"
    else:  # none yet, or other world settings: the generator refuses to replace one unforced
        manifest = generate_world(ctx.settings)
        verb = "generated"
    lines = sum(manifest.files.values())
    ctx.report["world"] = {"lines": lines, "days": sorted(manifest.days)}
    return f"{verb} a world of {lines:,} event lines over {len(manifest.days)} days"


def _ingest(ctx: RunContext) -> str:
    from ingestion.days import ingest
    from ingestion.landing import landing_days

    runs = ingest(ctx.settings, landing_days(ctx.settings), ctx.run_id)
    totals = {
        key: sum(r[key] for r in runs)
        for key in ("input_records", "silver_rows", "quarantine_rows", "duplicate_rows")
    }
    # A volume warning is reported, not raised: the day's tables are complete and consistent.
    warnings = [f"{r['interval_start']:%Y-%m-%d}: {r['status_reason']}" for r in runs
                if r["status"] != "success"]  # fmt: skip
    ctx.report["ingest"] = totals | {"warnings": warnings}
    flagged = f"; {len(warnings)} day(s) flagged: {'; '.join(warnings)}" if warnings else ""
    return (
        f"{totals['input_records']:,} events in, {totals['silver_rows']:,} to silver, "
        f"{totals['quarantine_rows']:,} quarantined, {totals['duplicate_rows']:,} duplicates"
        f"{flagged}"
    )


def _features(ctx: RunContext) -> str:
    from audotics.spark import spark_job
    from feature_store.online import materialize
    from spark_jobs.features.job import newest_event_date, run

    ctx.as_of = newest_event_date(ctx.settings)  # a manual run's snapshot: the newest day
    with spark_job(ctx.settings, "audotics run: features") as spark:
        writes = run(spark, ctx.settings, ctx.as_of, ctx.run_id)
    online = materialize(ctx.settings, as_of=ctx.as_of)  # the snapshot just built, no other
    ctx.report["features"] = {w.table: w.rows for w in writes} | {"as_of": str(ctx.as_of)}
    written = ", ".join(f"{w.table} {w.rows:,}" for w in writes)
    return f"as of {ctx.as_of}: {written}; online: {sum(m.rows for m in online):,} entities"


def _train(ctx: RunContext) -> str:
    from spark_jobs.recommender.train import run_pipeline

    result = run_pipeline(ctx.settings, ctx.as_of)
    ctx.report["train"] = result
    if result["status"] == "rejected":  # a verdict, not a failure of the run
        return f"candidate rejected by the quality gate: {result['reason']}"
    return (
        f"{result['model_version']} {result['status']}: ndcg@10 "
        f"{result['metrics'].get('ndcg@10', float('nan')):.3f} vs popularity "
        f"{result['baseline_metrics'].get('ndcg@10', float('nan')):.3f}"
    )


def _publish(ctx: RunContext) -> str:
    from serving.publish import example_curl, publish_recommendations

    result = publish_recommendations(ctx.settings)
    ctx.report["publish"] = result.summary()
    ctx.report["curl"] = example_curl(ctx.settings, result.model_version)
    return result.line()


def _erasures(ctx: RunContext) -> str:
    from orchestration.gdpr import erase_queued, queued_requests

    done = [erase_queued(ctx.settings, r).request_id for r in queued_requests(ctx.settings)]
    ctx.report["gdpr"] = {"requests_completed": len(done)}
    return f"{len(done)} queued erasure request(s) completed"


def _warehouse(ctx: RunContext) -> str:
    from experiments.decision import decide_and_report
    from warehouse.build import build_warehouse

    report, _ = build_warehouse(ctx.settings)
    decided = decide_and_report(ctx.settings)  # on the marts just built
    ctx.report["warehouse"] = {"rows_loaded": report.rows_loaded}
    ctx.report["experiments"] = [line for _, lines in decided for line in lines]
    decisions = "".join(f"; {decision.line()}" for decision, _ in decided)
    return f"{report.rows_loaded:,} rows loaded into raw; dbt build passed{decisions}"


def _dbt_docs(ctx: RunContext) -> str:
    from warehouse.dbt import dbt_target_dir, run_dbt

    run_dbt(ctx.settings, ["docs", "generate"])  # the GX Data Docs were built by ingest
    return f"dbt docs generated under {dbt_target_dir(ctx.settings)}"


# --- the registry -------------------------------------------------------------------------------

SERVICES = Stage("services", _services)
# The world registers the experiment its service ran (models/experiments), as its operator would
# have with `audotics experiment start`.
WORLD = Stage("world", _world, writes=(tables.EXPERIMENTS,))
INGEST = Stage(
    "ingest",
    _ingest,
    dag_id="ingest_events",
    inputs=EXTERNAL_INPUTS,
    writes=(
        tables.BRONZE_EVENTS,
        tables.QUARANTINE_EVENTS,
        tables.SILVER_EVENTS,
        *tables.SCD2_TABLES,
        tables.INGEST_RUNS,
    ),
)
FEATURES = Stage(
    "features",
    _features,
    dag_id="build_features",
    reads=(tables.SILVER_EVENTS, tables.SILVER_USERS, tables.SILVER_TRACKS),
    writes=(tables.USER_FEATURES, tables.TRACK_FEATURES, tables.INTERACTIONS),
    trigger=Trigger((tables.SILVER_EVENTS, tables.SILVER_USERS, tables.SILVER_TRACKS)),
)
TRAIN = Stage(
    "train",
    _train,
    dag_id="train_recommender",
    # The catalog: the fallback recommendations of users the model does not know.
    reads=(
        tables.INTERACTIONS,
        tables.SILVER_USERS,
        tables.SILVER_TRACKS,
        tables.SILVER_PLAYLISTS,
        tables.SILVER_PLAYLIST_TRACKS,
    ),
    writes=(
        tables.USER_FACTORS,
        tables.ITEM_FACTORS,
        tables.MODEL_REGISTRY,
        tables.RECOMMENDATIONS,
        tables.SIMILAR_TRACKS,
    ),
    trigger=Trigger((tables.INTERACTIONS,)),
)
PUBLISH = Stage(
    "publish",
    _publish,
    dag_id="publish_recommendations",
    reads=(
        tables.MODEL_REGISTRY,
        tables.RECOMMENDATIONS,
        tables.SIMILAR_TRACKS,
        tables.SILVER_TRACKS,
        tables.SILVER_ARTISTS,
    ),
    trigger=Trigger((tables.RECOMMENDATIONS, tables.SIMILAR_TRACKS)),
)
# Erasures queued (`audotics gdpr-delete --queue`) or left pending by a crash: after publishing,
# so its final Redis step also catches what publishing wrote, and before the warehouse loads the
# audit, which its quarantine reconciliation reads.
GDPR_ERASURE = Stage(
    "gdpr erasure", _erasures, dag_id="gdpr_erasure", writes=(tables.GDPR_REQUESTS,)
)
WAREHOUSE = Stage(
    "warehouse",
    _warehouse,
    dag_id="warehouse",
    reads=(  # warehouse.load.SOURCES (tests/test_stages.py keeps the two equal)
        tables.SILVER_EVENTS,
        tables.SILVER_USERS,
        tables.SILVER_TRACKS,
        tables.SILVER_ARTISTS,
        tables.SILVER_PLAYLISTS,
        tables.SILVER_PLAYLIST_TRACKS,
        tables.QUARANTINE_EVENTS,
        tables.INGEST_RUNS,
        tables.MODEL_REGISTRY,
        tables.RECOMMENDATIONS,
        tables.EXPERIMENTS,
        tables.GDPR_REQUESTS,
    ),
    # After dbt, the decision on each running experiment from its results (experiments/decision.py).
    writes=(tables.EXPERIMENT_DECISIONS,),
    # The load is incremental: any of these changing is worth a run.
    trigger=Trigger(
        (tables.SILVER_EVENTS, tables.MODEL_REGISTRY, tables.RECOMMENDATIONS), mode="any"
    ),
)
DOCS = Stage("docs", _dbt_docs)

STAGES: tuple[Stage, ...] = (
    SERVICES, WORLD, INGEST, FEATURES, TRAIN, PUBLISH, GDPR_ERASURE, WAREHOUSE, DOCS
)  # fmt: skip
DAG_STAGES: tuple[Stage, ...] = tuple(stage for stage in STAGES if stage.dag_id)
