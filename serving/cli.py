"""`audotics publish` and `audotics serve`."""

from __future__ import annotations

import os
import shutil
import socket

import click

from audotics.errors import AudoticsError
from audotics.settings import get_settings


@click.command("publish")
@click.option(
    "--model-version",
    metavar="VERSION",
    help="Publish this version instead of the registry's published model.",
)
@click.option(
    "--rollback",
    is_flag=True,
    help="Switch readers back to the previous version (again: forward to the one rolled back).",
)
def publish(model_version: str | None, rollback: bool) -> None:
    """Load a model version's recommendations and similar tracks into Redis and switch readers
    to it once complete; or roll back to the previous version."""
    from serving.publish import example_curl, publish_recommendations
    from serving.publish import rollback as roll_back

    if rollback and model_version:
        raise click.UsageError("--rollback and --model-version exclude each other")
    settings = get_settings()
    result = roll_back(settings) if rollback else publish_recommendations(settings, model_version)
    click.echo(result.line())
    click.echo(
        f"try it (with `audotics serve` running): {example_curl(settings, result.model_version)}"
    )


@click.command("serve")
@click.option("--host", help="Bind address (default: AUDOTICS_API_HOST).")
@click.option("--port", type=int, help="Port (default: AUDOTICS_API_PORT).")
@click.option("--workers", type=int, help="Worker processes (default: AUDOTICS_API_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the read API (uvicorn with uvloop and httptools) until interrupted."""
    import uvicorn

    settings = get_settings()
    # Workers count requests in files here and /metrics adds them up. prometheus_client reads
    # the variable when first imported, so it is set before serving.api is. Emptied at start:
    # counts are per server run.
    metrics_dir = settings.state_dir / "api-metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from serving.api import require_api_keys

    host = host or settings.api_host
    require_api_keys(settings, host)  # a clear error here rather than a traceback per worker
    # Workers read their settings from the environment: this makes their demo-key check see
    # the address they really listen on, --host included.
    os.environ["AUDOTICS_API_HOST"] = host
    port = port or settings.api_port
    check_port_free(host, port)
    uvicorn.run(
        "serving.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.api_workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # a log line per request would cost more than the request
        log_level="info",
    )


def check_port_free(host: str, port: int) -> None:
    """Refuse a busy port with its number and how to move it: uvicorn would only log
    "[Errno 98] Address already in use" (SO_REUSEADDR as uvicorn, so TIME_WAIT is no conflict)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AudoticsError(
                f"cannot serve the API on {host}:{port}: {exc.strerror} (another `audotics "
                "serve`?). Stop it, or choose another port with --port or AUDOTICS_API_PORT."
            ) from exc
