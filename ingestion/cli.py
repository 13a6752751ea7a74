"""`audotics ingest`: land, validate and refine events for one day, a range (backfill), or
every landing day."""

from __future__ import annotations

import datetime as dt
import sys

import click

from audotics import logs
from audotics.identifiers import new_run_id
from audotics.settings import get_settings
from expectations.validation import validation_process

EXIT_WARNING = 2  # a day was flagged by the volume gate (1 is any error, as for every command)


@click.command("ingest")
@click.option("--date", "start", type=click.DateTime(["%Y-%m-%d"]), help="First landing day.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (backfill).")
def ingest(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Ingest landing days into bronze, quarantine and silver (default: every landing day).

    One line per day, ending in its status and, unless `success`, the reason. Exit status:
    0 when every day succeeded; 2 when the volume gate flagged a day as a warning (no landing
    files, or fewer records than AUDOTICS_INGEST_MIN_VOLUME_SHARE of the trailing average);
    1 on an error or a failed gate (with AUDOTICS_INGEST_VOLUME_GATE=fail, a flagged day),
    which stops the range at that day.
    """
    settings = get_settings()
    with validation_process():  # started first: GX loads there beside the imports below
        from ingestion.days import ingest as run_ingest
        from ingestion.landing import landing_days
        from ingestion.runs import WARNING, summary

        days = landing_days(settings)
        if start:
            last = (end or start).date()
            days = [start.date() + dt.timedelta(n) for n in range((last - start.date()).days + 1)]
        if not days:
            raise click.ClickException(f"no landing days under {settings.landing_root}/events")
        runs = run_ingest(
            settings, days, new_run_id("cli"), on_day=lambda row: click.echo(summary(row))
        )
    status = EXIT_WARNING if any(row["status"] == WARNING for row in runs) else 0
    if "pyspark" not in sys.modules:  # else Spark's session cleans up at exit
        logs.exit_now(status)  # the teardown of Arrow, pandas and DuckDB: 0.2 s of nothing
    sys.exit(status)
