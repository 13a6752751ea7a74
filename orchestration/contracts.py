"""The lake sections of `docs/data-contracts.md`, rendered from the table catalog.

`audotics.lake.tables` declares every lake table once; the feature views in
`feature_store.definitions` declare the columns of the two feature tables. This module writes
one section per table between the page's markers, so the page cannot drift from the code:

    python -m orchestration.contracts          # rewrite the generated block in place
    python -m orchestration.contracts --check  # exit 1 if the committed page is stale

It lives in the composition root because it reads both the core and the feature store.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from audotics.lake import tables
from audotics.lake.tables import Table
from feature_store.definitions import FEATURE_VIEWS

BEGIN = "<!-- BEGIN GENERATED: lake tables (python -m orchestration.contracts) -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "data-contracts.md"
LAYER_WRITERS = {
    "bronze": "ingestion",
    "quarantine": "ingestion",
    "silver": "ingestion",
    "ops": "ingestion (`ingest_runs`) and GDPR erasure (`gdpr_requests`)",
    "features": "the Spark feature jobs",
    "models": "training",
    "gold": "training",
}


def table_schema(table: Table) -> pa.Schema:
    """The catalog's schema, or for a feature table the schema of its feature view."""
    if table.schema is not None:
        return table.schema
    return FEATURE_VIEWS[table.name].arrow_schema()


def type_text(kind: pa.DataType) -> str:
    """Arrow's spelling without the item field names: `list<string>`, `map<string, double>`."""
    if pa.types.is_map(kind):
        return f"map<{type_text(kind.key_type)}, {type_text(kind.item_type)}>"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list<{type_text(kind.value_type)}>"
    return str(kind)


def names(columns: Sequence[str]) -> str:
    return ", ".join(f"`{c}`" for c in columns)


def facts(table: Table) -> str:
    """One line: partitioning, key, personal data."""
    partitioning = (
        f"Partitioned by {names(table.partition_by)}" if table.partition_by else "Unpartitioned"
    )
    key = f"key {names(table.keys)}"
    if table.scd2:
        key += " (one row per version of it)"
    personal = [names(table.user_columns)] if table.user_columns else []
    if table.raw_lines:
        personal.append("any user id inside the raw landing lines")
    privacy = f"personal data: {' and '.join(personal)}" if personal else "no personal data"
    return f"{partitioning}; {key}; {privacy}."


def table_markdown(table: Table) -> str:
    description = table.description
    if table.schema is None:
        view = FEATURE_VIEWS[table.name]
        description += (
            f" Columns declared by feature view `{view.name}` (entity `{view.entity.name}`, "
            f"{len(view.features)} features, described in "
            "[feature_store/README.md](../feature_store/README.md))."
        )
    rows = "".join(
        f"| `{f.name}` | `{type_text(f.type)}` | {'yes' if f.nullable else 'no'} "
        f"| {table.notes.get(f.name, '')} |\n"
        for f in table_schema(table)
    )
    return (
        f"#### `{table.path}`\n\n{description}\n\n{facts(table)}\n\n"
        "| column | Arrow type | nullable | notes |\n|---|---|---|---|\n" + rows
    )


def markdown() -> str:
    """The generated block, markers included: every catalog table, grouped by layer."""
    sections = []
    for layer in dict.fromkeys(t.layer for t in tables.TABLES):  # in catalog order
        sections.append(f"### `{layer}/` — written by {LAYER_WRITERS[layer]}\n")
        sections.extend(table_markdown(t) for t in tables.TABLES if t.layer == layer)
    return f"{BEGIN}\n\n" + "\n".join(sections) + f"\n{END}"


def render(page: str) -> str:
    """`page` with its generated block replaced by the catalog's current one."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC}: no block between {BEGIN!r} and {END!r} to render into")
    return page[:start] + markdown() + page[end + len(END) :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.contracts", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the page differs from the catalog"
    )
    args = parser.parse_args(argv)
    page = DOC.read_text()
    fresh = render(page)
    if args.check:
        if fresh != page:
            print(f"{DOC} is stale: run python -m orchestration.contracts", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
