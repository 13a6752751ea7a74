"""`audotics services`: the embedded PostgreSQL and Redis, or checks on the external ones."""

from __future__ import annotations

import sys

import click

from audotics import services
from audotics.settings import get_settings


@click.group("services")
def services_group() -> None:
    """Embedded PostgreSQL and Redis (or checks on the external ones you configured)."""


@services_group.command("up")
def services_up() -> None:
    """Start the embedded servers (idempotent; data is kept between runs)."""
    for status in services.up(get_settings()):
        click.echo(status.line())


@services_group.command("down")
def services_down() -> None:
    """Stop the embedded servers; their data stays under the state folder."""
    settings = get_settings()
    services.down(settings)
    for status in services.status(settings):
        click.echo(status.line())


@services_group.command("status")
def services_status() -> None:
    """Show each service: up or down, embedded or external, its URL. Exit 1 if one is down."""
    statuses = services.status(get_settings())
    for status in statuses:
        click.echo(status.line())
    if not all(s.running for s in statuses):
        sys.exit(1)
