"""The README's feature tables and services, generated from the definitions: `audotics features
docs`."""

from __future__ import annotations

import datetime as dt

from feature_store.definitions import FEATURE_SERVICES, FEATURE_VIEWS
from feature_store.model import FeatureService, FeatureView

BEGIN = "<!-- BEGIN generated: audotics features docs -->"
END = "<!-- END generated -->"


def duration_text(duration: dt.timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours % 24 == 0 else f"{hours:g} hours"


def view_markdown(view: FeatureView) -> str:
    entities = ", ".join(f"`{e.name}` (key `{e.join_key}`)" for e in view.entities)
    serving = "online (Redis) and offline" if view.online else "offline only"
    header = (
        f"### `{view.name}`: {view.description}\n\n"
        f"{'Entity' if len(view.entities) == 1 else 'Entities'} {entities}; offline table "
        f"`{view.table}`; {serving}; owner {view.owner}; source `{view.source_job}`; "
        f"ttl {duration_text(view.ttl)}.\n\n"
        "| feature | type | description |\n|---|---|---|\n"
    )
    rows = "".join(
        f"| `{f.name}` | `{f.dtype.spark_type}` | {f.description} |\n" for f in view.features
    )
    return header + rows


def service_markdown(service: FeatureService) -> str:
    reads = "".join(
        f"| `{p.view.name}` | {', '.join(f'`{name}`' for name in p.features)} |\n"
        for p in service.projections
    )
    return (
        f"### Feature service `{service.name}`\n\n{service.description}\n\n"
        f"| view | features |\n|---|---|\n{reads}"
    )


def markdown() -> str:
    """Every view's and service's table, between the markers the README keeps them in."""
    body = "\n".join(
        [
            *(view_markdown(view) for view in FEATURE_VIEWS.values()),
            *(service_markdown(service) for service in FEATURE_SERVICES.values()),
        ]
    )
    return f"{BEGIN}\n{body}{END}\n"
