"""`audotics features ...`: build the features tables, materialize them to Redis, read them."""

from __future__ import annotations

import datetime as dt

import click
import orjson

from audotics.settings import get_settings


@click.group("features")
def features() -> None:
    """Feature tables (Spark, Delta) and the feature store (offline Delta, online Redis)."""


@features.command("build")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Snapshot date D: events with ts < D+1 00:00 UTC. Default: the newest event_date "
    "in silver/events.",
)
def build(as_of: dt.datetime | None) -> None:
    """Build features/user_features, track_features and interactions in-process (Spark with
    AUDOTICS_SPARK_MASTER). Airflow runs the same job through spark-submit."""
    from audotics.spark import spark_job
    from spark_jobs.features.job import newest_event_date, run

    settings = get_settings()
    snapshot_date = as_of.date() if as_of else newest_event_date(settings)
    run_id = f"cli-features-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    with spark_job(settings, "audotics features build") as spark:
        for write in run(spark, settings, snapshot_date, run_id):
            click.echo(
                f"features/{write.table}: {write.rows} rows as of {snapshot_date} "
                f"(v{write.version})"
            )


@features.command("materialize")
@click.option("--view", "views", multiple=True, help="Online feature view (default: all).")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Snapshot to publish (default: each view's newest).",
)
def materialize_command(views: tuple[str, ...], as_of: dt.datetime | None) -> None:
    """Copy a snapshot of the offline store to the online store (Redis)."""
    from feature_store.online import materialize

    for result in materialize(get_settings(), views or None, as_of=as_of and as_of.date()):
        click.echo(orjson.dumps(result.summary()).decode())


@features.command("get")
@click.argument("entity_ids", nargs=-1, required=True)
@click.option("-f", "--feature", "names", multiple=True, required=True, help="view:feature")
def get_command(entity_ids: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Print the live online features of some entities as JSON."""
    from feature_store.online import get_online_features

    vectors = get_online_features(entity_ids, names, settings=get_settings())
    click.echo(orjson.dumps(vectors, option=orjson.OPT_INDENT_2).decode())


@features.command("docs")
def docs_command() -> None:
    """Print the feature tables of feature_store/README.md, generated from the definitions."""
    from feature_store.docs import markdown

    click.echo(markdown(), nl=False)
