"""`audotics docs`: the dbt docs and the GX Data Docs over HTTP on 127.0.0.1.

Both are static sites, but Chromium cannot open dbt's from file:// (its page fetches
manifest.json and catalog.json, which file:// refuses), so they are served, each on its port.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click

from audotics.errors import AudoticsError
from audotics.settings import Settings, get_settings
from expectations.validation import gx_context_docs
from warehouse.dbt import dbt_target_dir

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # a line per asset request would bury the two URLs


def docs_sites(settings: Settings) -> dict[str, tuple[Path, int, str]]:
    """What is served: name -> (folder, port, the setting that chooses the port)."""
    return {
        "dbt docs": (dbt_target_dir(settings), settings.docs_dbt_port, "AUDOTICS_DOCS_DBT_PORT"),
        "GX Data Docs": (
            gx_context_docs(settings),
            settings.docs_gx_port,
            "AUDOTICS_DOCS_GX_PORT",
        ),
    }


def start_servers(settings: Settings) -> list[ThreadingHTTPServer]:
    """Bind every site's port (all or none: a busy port fails at once, naming it and its
    setting) and serve each from a daemon thread."""
    servers: list[ThreadingHTTPServer] = []
    for name, (folder, port, variable) in docs_sites(settings).items():
        folder.mkdir(parents=True, exist_ok=True)  # before the first run: an empty listing
        handler = functools.partial(_QuietHandler, directory=str(folder))
        try:
            servers.append(ThreadingHTTPServer((HOST, port), handler))
        except OSError as exc:
            for server in servers:
                server.server_close()
            raise AudoticsError(
                f"cannot serve the {name} on {HOST}:{port} ({exc.strerror}): set {variable} to "
                "a free port"
            ) from exc
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers


@click.command("docs")
def docs_command() -> None:
    """Serve the dbt docs and the GX Data Docs on 127.0.0.1 (Ctrl-C stops both)."""
    settings = get_settings()
    servers = start_servers(settings)
    for name, (folder, port, _variable) in docs_sites(settings).items():
        click.echo(f"{name + ':':14} http://{HOST}:{port}/  ({folder})")
    click.echo("Ctrl-C stops both.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
