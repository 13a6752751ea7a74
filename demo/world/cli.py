"""`audotics generate`: write the demo world (options override the world_* settings)."""

from __future__ import annotations

import datetime as dt

import click

from audotics import services
from audotics.settings import get_settings
from demo.world.generate import generate_world
from demo.world.landing import events_root
from demo.world.spec import with_overrides


@click.command("generate")
@click.option("--seed", type=click.IntRange(min=0), help="RNG seed [world_seed].")
@click.option(
    "--start-date", type=click.DateTime(["%Y-%m-%d"]), help="First day [world_start_date]."
)
@click.option("--days", type=click.IntRange(min=1), help="Days of events [world_days].")
@click.option("--users", type=click.IntRange(min=1), help="Users [world_users].")
@click.option("--artists", type=click.IntRange(min=1), help="Artists [world_artists].")
@click.option("--tracks", type=click.IntRange(min=1), help="Tracks [world_tracks].")
@click.option(
    "--events-per-day", type=click.IntRange(min=1), help="Lines per day [world_events_per_day]."
)
@click.option(
    "--bad-rate",
    type=click.FloatRange(0.0, 0.5),
    help="Share of bad records [world_bad_record_rate].",
)
@click.option(
    "--experiment-days",
    type=click.IntRange(min=0),
    help="Last days under the A/B experiment [world_experiment_days].",
)
@click.option(
    "--experiment-effect",
    type=click.FloatRange(-0.5, 1.0),
    help="The challenger's true effect on its recommendation sessions [world_experiment_effect].",
)
@click.option(
    "--force", is_flag=True, help="Replace a different world already in the landing folder."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar [when stderr is a terminal]."
)
def generate(
    seed: int | None,
    start_date: dt.datetime | None,
    days: int | None,
    users: int | None,
    artists: int | None,
    tracks: int | None,
    events_per_day: int | None,
    bad_rate: float | None,
    experiment_days: int | None,
    experiment_effect: float | None,
    force: bool,
    progress: bool | None,
) -> None:
    """Generate the seeded demo world: the app database (schema app) and hourly event files
    under <landing_root>/events, described by its _world.json manifest.

    The same settings and seed always give the same rows and byte-identical files; a re-run
    rewrites them. A different world in the landing folder is only replaced with --force. An
    embedded PostgreSQL is started if it is not running."""
    settings = with_overrides(
        get_settings(),
        seed=seed,
        start_date=start_date.date() if start_date else None,
        days=days,
        users=users,
        artists=artists,
        tracks=tracks,
        events_per_day=events_per_day,
        bad_rate=bad_rate,
        experiment_days=experiment_days,
        experiment_effect=experiment_effect,
    )
    if settings.embedded_postgres:
        services.EmbeddedPostgres(settings).up()
    manifest = generate_world(settings, force=force, progress=progress)
    totals = manifest.totals
    catalog = ", ".join(f"{count:,} {table}" for table, count in manifest.catalog.items())
    click.echo(f"app database: {catalog}")
    click.echo(
        f"events: {totals.lines:,} lines in {len(manifest.files)} files under "
        f"{events_root(settings)} ({totals.valid_events:,} valid, {totals.late_events:,} late, "
        f"{totals.bad_records:,} bad) in {sum(manifest.seconds.values()):.1f} s"
    )
