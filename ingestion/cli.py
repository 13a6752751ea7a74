"""`audotics ingest`: land, validate and refine events for one day, a range (backfill), or
every landing day."""

from __future__ import annotations

import datetime as dt

import click

from audotics.identifiers import new_run_id
from audotics.settings import get_settings


@click.command("ingest")
@click.option("--date", "start", type=click.DateTime(["%Y-%m-%d"]), help="First landing day.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (backfill).")
def ingest(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Ingest landing days into bronze, quarantine and silver (default: every landing day)."""
    from ingestion.days import ingest as run_ingest
    from ingestion.landing import landing_days

    settings = get_settings()
    days = landing_days(settings)
    if start:
        last = (end or start).date()
        days = [start.date() + dt.timedelta(n) for n in range((last - start.date()).days + 1)]
    if not days:
        raise click.ClickException(f"no landing days under {settings.landing_root}/events")
    run_id = new_run_id("cli")
    for row in run_ingest(settings, days, run_id):
        click.echo(
            f"{row['interval_start']:%Y-%m-%d}: {row['input_records']} in, "
            f"{row['silver_rows']} silver, {row['quarantine_rows']} quarantined, "
            f"{row['duplicate_rows']} duplicates, {row['status']}"
        )
