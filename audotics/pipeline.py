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
    if manifest is not None and manifest.spec == WorldSpec.from_settings(ctx.settings).as_json():
        verb = "found"
    else:  # none yet, or other world settings: the generator refuses to replace one unforced
        manifest = generate_world(ctx.settings)
        verb = "generated"
    lines = sum(manifest.files.values())
    ctx.report["world"] = {"lines": lines, "days": sorted(manifest.days)}
    return f"{verb} a world of {lines:,} event lines over {len(manifest.days)} days"


def _ingest(ctx: RunContext) -> str:
    from audotics.ingest.pipeline import ingest, landing_days

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


STAGES: list[Stage] = [
    Stage("services", _services),
    Stage("world", _world),
    Stage("ingest", _ingest),
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
    click.echo("\nWhere to look next:")
    click.echo(f"  lake:          {settings.lake_root}")
    click.echo(f"  GX Data Docs:  {docs / 'index.html'}")
    click.echo("  Airflow UI:    make airflow")


@click.command("run")
def run_command() -> None:
    """Run the whole nightly pipeline on the configured platform and print a report."""
    from audotics.settings import get_settings

    print_report(run_pipeline(get_settings()))
