"""The `audotics` command, the composition root's entry point. Each stage's subcommands live
beside the code they drive, listed in LAZY_COMMANDS and imported only when called: a command
pays only for its own stage's imports (`audotics services up` loads no Spark, pandas or
Airflow), and OPENBLAS_NUM_THREADS is set before any of them loads numpy. `--help` imports them
all, to show their help; tests/test_stages.py checks every entry resolves."""

from __future__ import annotations

import importlib
import os
import sys

import click
from pydantic import ValidationError

from audotics import logs
from audotics.errors import AudoticsError
from audotics.settings import Settings, get_settings, mask_secrets

# name -> "module:attribute" of a click command: the stage CLIs this entry point composes.
LAZY_COMMANDS: dict[str, str] = {
    "generate": "demo.world.cli:generate",
    "features": "spark_jobs.features.cli:features",
    "publish": "serving.cli:publish",
    "experiment": "experiments.cli:experiment_group",
    "serve": "serving.cli:serve",
    "evaluate": "spark_jobs.recommender.evaluate_cli:evaluate_command",
    "train": "spark_jobs.recommender.train:train_command",
    "ingest": "ingestion.cli:ingest",
    "run": "orchestration.nightly:run_command",
    "airflow": "orchestration.airflow_local:airflow_command",
    "cluster": "orchestration.spark_cluster:cluster_group",
    "gdpr-delete": "orchestration.gdpr:gdpr_delete_command",
    "warehouse": "warehouse.cli:warehouse_group",
    "dbt-profile": "warehouse.cli:dbt_profile_command",
    "dashboards": "dashboards.cli:dashboards",
    "docs": "orchestration.docs_server:docs_command",
    "services": "orchestration.services_cli:services_group",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Every log record on the console too.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Audotics: batch data platform for music recommendations. Each command logs everything
    to a file under <state>/logs; the console shows its progress, results and warnings."""
    if ctx.invoked_subcommand:
        logs.configure(get_settings().state_dir, ctx.invoked_subcommand, verbose)


@cli.command("settings")
@click.option("--markdown", is_flag=True, help="Print the documentation table for the README.")
def settings_command(markdown: bool) -> None:
    """Show every setting with its current value, secrets masked (or its documentation with
    --markdown)."""
    current = get_settings()
    if markdown:
        click.echo("| variable | default | meaning |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        variable = f"AUDOTICS_{name.upper()}"
        if markdown:
            default = field.get_default(call_default_factory=True)
            click.echo(f"| `{variable}` | `{default}` | {field.description} |")
        else:
            click.echo(f"{variable}={mask_secrets(getattr(current, name), name)}")


def settings_error_lines(exc: ValidationError) -> list[str]:
    """One line per invalid setting, naming its AUDOTICS_ variable, the value given and the
    expected form (pydantic's message names only the field, and comes with a traceback)."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        field = Settings.model_fields.get(name)
        if field is None:  # not one field's fault (a model-wide check): pydantic's words
            lines.append(f"error: invalid settings: {error['msg']}")
            continue
        expected = getattr(field.annotation, "__name__", str(field.annotation))
        default = field.get_default(call_default_factory=True)
        given = mask_secrets(error.get("input"), name)
        lines.append(
            f"error: AUDOTICS_{name.upper()}={given!r} is invalid: {error['msg']} "
            f"(expected {expected}, default {default}; fix or unset the variable, or .env)"
        )
    return lines


def main() -> None:
    # implicit's ALS is slower with OpenBLAS threads than without; set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        cli(standalone_mode=True)
    except AudoticsError as exc:
        click.echo(f"error: {mask_secrets(exc)}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise  # a bug elsewhere, not a setting: keep its traceback
        click.echo("\n".join(settings_error_lines(exc)), err=True)
        sys.exit(2)  # a usage error, as click's own


if __name__ == "__main__":
    main()
