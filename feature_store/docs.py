"""The README's feature tables, generated from the definitions: `audotics features docs`."""

from __future__ import annotations

import datetime as dt

from feature_store.definitions import FEATURE_VIEWS
from feature_store.model import FeatureView

BEGIN = "<!-- BEGIN generated: audotics features docs -->"
END = "<!-- END generated -->"


def duration_text(duration: dt.timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours % 24 == 0 else f"{hours:g} hours"


def view_markdown(view: FeatureView) -> str:
    header = (
        f"### `{view.name}`: {view.description}\n\n"
        f"Entity `{view.entity.name}` (key `{view.entity.join_key}`); offline table "
        f"`features/{view.table}`; owner {view.owner}; source `{view.source_job}`; "
        f"ttl {duration_text(view.ttl)}.\n\n"
        "| feature | type | description |\n|---|---|---|\n"
    )
    rows = "".join(
        f"| `{f.name}` | `{f.dtype.spark_type}` | {f.description} |\n" for f in view.features
    )
    return header + rows


def markdown() -> str:
    """Every view's table, between the markers the README keeps them in."""
    body = "\n".join(view_markdown(view) for view in FEATURE_VIEWS.values())
    return f"{BEGIN}\n{body}{END}\n"
