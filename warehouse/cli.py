"""`audotics warehouse load|build|dbt` and `audotics dbt-profile`."""

from __future__ import annotations

import shlex
import sys

import click

from audotics.settings import get_settings
from warehouse.build import build_warehouse
from warehouse.dbt import DBT_PROJECT_DIR, dbt_env, run_dbt
from warehouse.load import load_warehouse


@click.group("warehouse")
def warehouse_group() -> None:
    """The PostgreSQL warehouse: load lake tables into schema raw, run the dbt project."""


@warehouse_group.command("load")
@click.option(
    "--full-refresh", is_flag=True, help="Drop and reload every raw table (schema changes)."
)
def load_command(full_refresh: bool) -> None:
    """Copy what changed in the lake into schema raw (incremental, idempotent)."""
    report = load_warehouse(get_settings(), full_refresh=full_refresh)
    for table in report.tables:
        click.echo(table.line())
    click.echo(f"{report.rows_loaded} rows loaded")


@warehouse_group.command("build")
@click.option("--full-refresh", is_flag=True, help="Reload raw and rebuild incremental models.")
def build_command(full_refresh: bool) -> None:
    """Load what changed, then dbt build (models and tests) against the warehouse."""
    report, _ = build_warehouse(get_settings(), full_refresh=full_refresh, echo=True)
    click.echo(f"loaded {report.rows_loaded} rows; dbt build passed")


@warehouse_group.command(
    "dbt", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt_command(args: tuple[str, ...]) -> None:
    """Run dbt on the project against the configured warehouse, e.g. `dbt build`."""
    invocation = run_dbt(get_settings(), args or ("build",), echo=True, check=False)
    sys.exit(invocation.returncode)


@click.command("dbt-profile")
def dbt_profile_command() -> None:
    """Print shell exports that point plain `dbt` at the configured warehouse:
    eval "$(audotics dbt-profile)"."""
    settings = get_settings()
    click.echo("# dbt connection for the current AUDOTICS settings (read by dbt/profiles.yml)")
    click.echo(f"export DBT_PROFILES_DIR={shlex.quote(str(DBT_PROJECT_DIR))}")
    for name, value in dbt_env(settings).items():
        click.echo(f"export {name}={shlex.quote(value)}")
