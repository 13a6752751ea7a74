"""`audotics run`: the nightly pipeline on whatever the settings point at (the embedded default
for `make run`), stage by stage, with progress and a closing report.

The stages call the same functions the Airflow tasks call, in the order the Assets link the
DAGs, so `make run` and the scheduled DAGs produce the same tables. Every stage is idempotent,
so a second run redoes the work and ends in the same state.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from audotics.errors import AudoticsError
from audotics.settings import Settings


class StageError(AudoticsError):
    """A stage failed: the message names the stage and the reason."""


@dataclass
class RunContext:
    settings: Settings
    run_id: str
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext], str]  # returns a one-line summary


def _services(ctx: RunContext) -> str:
    from audotics import services

    return "; ".join(s.line().split("  ")[0] for s in services.up(ctx.settings))


def _world(ctx: RunContext) -> str:
    from audotics.world.errors import WorldError
    from audotics.world.generate import generate_world, load_manifest
    from audotics.world.spec import WorldSpec

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
    from audotics.ingest.landing import landing_days
    from audotics.ingest.pipeline import ingest

    runs = ingest(ctx.settings, landing_days(ctx.settings), ctx.run_id)
    totals = {
        key: sum(r[key] for r in runs)
        for key in ("input_records", "silver_rows", "quarantine_rows", "duplicate_rows")
    }
    ctx.report["ingest"] = totals
    return (
        f"{totals['input_records']:,} events in, {totals['silver_rows']:,} to silver, "
        f"{totals['quarantine_rows']:,} quarantined, {totals['duplicate_rows']:,} duplicates"
    )


def _features(ctx: RunContext) -> str:
    from audotics.spark import spark_job
    from feature_store.online import materialize
    from spark_jobs.features.job import newest_event_date, run

    as_of = newest_event_date(ctx.settings)
    with spark_job(ctx.settings, "audotics run: features") as spark:
        writes = run(spark, ctx.settings, as_of, ctx.run_id)
    online = materialize(ctx.settings)
    ctx.report["features"] = {w.table: w.rows for w in writes} | {"as_of": str(as_of)}
    tables = ", ".join(f"{w.table} {w.rows:,}" for w in writes)
    return f"as of {as_of}: {tables}; online: {sum(m.rows for m in online):,} entities"


def _train(ctx: RunContext) -> str:
    from spark_jobs.recommender.gate import GateRejected
    from spark_jobs.recommender.train import run_pipeline

    try:
        result = run_pipeline(ctx.settings)
    except GateRejected as rejected:  # not a failure of the run: the last good model stays
        ctx.report["train"] = {"status": "rejected", "reason": str(rejected)}
        return f"candidate rejected by the quality gate: {rejected}"
    ctx.report["train"] = result
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


def _warehouse(ctx: RunContext) -> str:
    from audotics.warehouse import build_warehouse

    report, _ = build_warehouse(ctx.settings)
    ctx.report["warehouse"] = {"rows_loaded": report.rows_loaded}
    return f"{report.rows_loaded:,} rows loaded into raw; dbt build passed"


def _dbt_docs(ctx: RunContext) -> str:
    from audotics.warehouse import run_dbt

    run_dbt(ctx.settings, ["docs", "generate"])  # the GX Data Docs were built by ingest
    return f"dbt docs generated under {ctx.settings.state_dir / 'dbt' / 'target'}"


STAGES: list[Stage] = [
    Stage("services", _services),
    Stage("world", _world),
    Stage("ingest", _ingest),
    Stage("features", _features),
    Stage("train", _train),
    Stage("publish", _publish),
    Stage("warehouse", _warehouse),
    Stage("docs", _dbt_docs),
]


def run_pipeline(settings: Settings) -> RunContext:
    ctx = RunContext(
        settings, f"run__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    )
    started = time.perf_counter()
    for number, stage in enumerate(STAGES, 1):
        click.echo(f"[{number}/{len(STAGES)}] {stage.name} ...", err=True)
        stage_started = time.perf_counter()
        try:
            summary = stage.run(ctx)
        except Exception as exc:  # any failure: name the stage, keep the cause
            raise StageError(f"stage '{stage.name}' failed: {exc}") from exc
        click.echo(
            f"[{number}/{len(STAGES)}] {stage.name} done in "
            f"{time.perf_counter() - stage_started:.1f}s: {summary}",
            err=True,
        )
    ctx.report["seconds"] = round(time.perf_counter() - started, 1)
    return ctx


def print_report(ctx: RunContext) -> None:
    settings, report = ctx.settings, ctx.report
    ingest = report.get("ingest", {})
    docs = settings.state_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    click.echo(
        "\nAudotics nightly run: done in {}s (run id {})".format(report["seconds"], ctx.run_id)
    )
    if ingest:
        share = ingest["quarantine_rows"] / max(ingest["input_records"], 1)
        click.echo(
            f"  events: {ingest['input_records']:,} in, {ingest['quarantine_rows']:,} "
            f"quarantined ({share:.1%}), {ingest['duplicate_rows']:,} duplicates"
        )
    train = report.get("train", {})
    if train.get("status") == "rejected":
        click.echo(f"  model: candidate rejected by the gate: {train['reason']}")
    elif train:
        click.echo(f"  model: {train['model_version']} ({train['status']})")
        for metric in ("ndcg@10", "precision@10", "recall@10", "coverage@10"):
            if metric in train["metrics"]:
                click.echo(
                    f"    {metric:<13} {train['metrics'][metric]:.4f}   popularity baseline "
                    f"{train['baseline_metrics'].get(metric, float('nan')):.4f}"
                )
    publish = report.get("publish")
    if publish:
        click.echo(
            f"  published: {publish['model_version']} ({publish['action']}): "
            f"{publish['users']:,} users with recommendations, {publish['tracks']:,} tracks "
            "with similar tracks"
        )
    if "warehouse" in report:
        click.echo(
            f"  warehouse: {report['warehouse']['rows_loaded']:,} rows loaded; dbt build: "
            "all models and tests passed"
        )
    click.echo("\nWhere to look next:")
    click.echo(f"  lake:          {settings.lake_root}")
    click.echo(f"  GX Data Docs:  {docs / 'index.html'}")
    click.echo(f"  dbt docs:      {settings.state_dir / 'dbt' / 'target' / 'index.html'}")
    click.echo("  Airflow UI:    make airflow   (http://127.0.0.1:8080)")
    click.echo("  dashboards:    make dashboards (http://127.0.0.1:8501)")
    if "curl" in report:
        click.echo("  read API:      make api, then:")
        click.echo(f"    {report['curl']}")


@click.command("run")
def run_command() -> None:
    """Run the whole nightly pipeline on the configured platform and print a report."""
    from audotics.settings import get_settings

    print_report(run_pipeline(get_settings()))
