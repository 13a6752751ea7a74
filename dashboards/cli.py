"""`audotics dashboards`: serve the dashboards (Streamlit) on the configured warehouse."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from audotics.settings import get_settings

APP = Path(__file__).with_name("app.py")


@click.command("dashboards")
@click.option("--host", help="Bind address (default: AUDOTICS_DASHBOARDS_HOST).")
@click.option("--port", type=int, help="Port (default: AUDOTICS_DASHBOARDS_PORT).")
def dashboards(host: str | None, port: int | None) -> None:
    """Serve the dashboards on the dbt marts until interrupted (starts the embedded PostgreSQL
    if that is the warehouse)."""
    settings = get_settings()
    if settings.embedded_postgres:
        from audotics.services import EmbeddedPostgres

        EmbeddedPostgres(settings).up()
    host = host or settings.dashboards_host
    port = port or settings.dashboards_port
    click.echo(f"dashboards: http://{host}:{port} (Ctrl+C stops them)")
    sys.stdout.flush()  # exec replaces this process before Python would flush at exit
    # Streamlit's own command line, in place of this process: signals reach the server itself.
    os.execv(
        sys.executable,
        [
            sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", host,
            "--server.port", str(port),
            "--server.headless", "true",  # no browser is opened on the server's machine
            "--browser.gatherUsageStats", "false",  # no telemetry calls leave the network
            "--client.toolbarMode", "viewer",  # readers get no developer menu
        ],
    )  # fmt: skip
