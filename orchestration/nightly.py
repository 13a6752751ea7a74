"""`audotics run`: the nightly pipeline on whatever the settings point at (the embedded default
for `make run`): the stages of `orchestration.stages`, in order, with progress and a closing
report.

The stages call the same functions the Airflow tasks call, in the order the Assets link the
DAGs, so `make run` and the scheduled DAGs produce the same tables. Every stage is idempotent,
so a second run redoes the work and ends in the same state.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import click

from audotics import locks, logs
from audotics.errors import AudoticsError
from audotics.identifiers import new_run_id
from audotics.settings import Settings, get_settings
from orchestration.stages import SERVICES, STAGES, RunContext


class StageError(AudoticsError):
    """A stage failed: the message names the stage and the reason."""


def run_pipeline(settings: Settings) -> RunContext:
    """Every stage in order; one `audotics run` at a time (two would build and publish over
    each other)."""
    ctx = RunContext(settings, new_run_id("run"))
    with ExitStack() as held:
        _run_stages(ctx, held)
    return ctx


def _run_stages(ctx: RunContext, held: ExitStack) -> None:
    started = time.perf_counter()
    for number, stage in enumerate(STAGES, 1):
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
        if stage is SERVICES:  # the lock lives in PostgreSQL, which is up from here on
            purpose = f"audotics run {ctx.run_id}"
            held.enter_context(locks.exclusive(ctx.settings, "audotics run", purpose=purpose))
    ctx.report["seconds"] = round(time.perf_counter() - started, 1)


def print_report(ctx: RunContext) -> None:
    settings, report = ctx.settings, ctx.report
    ingest = report.get("ingest", {})
    click.echo(
        "\nAudotics nightly run: done in {}s (run id {})".format(report["seconds"], ctx.run_id)
    )
    if logs.log_file():
        click.echo(f"  log:    {logs.log_file()}")
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
    for line in report.get("experiments", []):
        click.echo(f"  {line}")
    click.echo("\nWhere to look next:")
    click.echo(f"  lake:          {settings.lake_root}")
    # Served, not file:// paths: dbt's page cannot fetch its manifest from file://.
    click.echo(f"  GX Data Docs:  make docs (http://127.0.0.1:{settings.docs_gx_port})")
    click.echo(f"  dbt docs:      make docs (http://127.0.0.1:{settings.docs_dbt_port})")
    # `make airflow` pins --port 8080; `audotics airflow` follows AUDOTICS_AIRFLOW_PORT.
    click.echo(f"  Airflow UI:    audotics airflow (http://127.0.0.1:{settings.airflow_port})")
    dashboards_url = f"http://{settings.dashboards_host}:{settings.dashboards_port}"
    click.echo(f"  dashboards:    make dashboards ({dashboards_url})")
    if "curl" in report:
        click.echo("  read API:      make api, then:")
        click.echo(f"    {report['curl']}")


@click.command("run")
def run_command() -> None:
    """Run the whole nightly pipeline on the configured platform and print a report."""
    print_report(run_pipeline(get_settings()))
