"""docs/data-contracts.md shows the lake as the catalog declares it: the committed page is
exactly what `python -m orchestration.contracts` renders."""

from __future__ import annotations

import subprocess
import sys

import pytest

from audotics.lake import tables
from orchestration import contracts
from tests.support import REPO


def test_the_committed_page_matches_the_catalog() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "orchestration.contracts", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_every_catalog_table_and_column_is_on_the_page() -> None:
    page = contracts.DOC.read_text()
    for table in tables.TABLES:
        section = page.split(f"#### `{table.path}`\n", 1)[1].split("\n#### ", 1)[0]
        for field in contracts.table_schema(table):
            assert f"| `{field.name}` | `{contracts.type_text(field.type)}` |" in section
        facts = contracts.facts(table)
        assert f"\n{facts}\n" in section
        for column in (*table.partition_by, *table.keys, *table.user_columns):
            assert f"`{column}`" in facts


def test_check_fails_on_a_stale_page_and_a_render_repairs_it(tmp_path, monkeypatch) -> None:
    committed = contracts.DOC.read_text()
    stale = tmp_path / "data-contracts.md"
    # A column the catalog no longer has, left behind in the generated block.
    row = "| `ts` | `timestamp[us, tz=UTC]` | no |  |\n"
    stale.write_text(committed.replace(row, row + "| `ts_local` | `string` | yes |  |\n", 1))
    monkeypatch.setattr(contracts, "DOC", stale)

    assert contracts.main(["--check"]) == 1
    assert contracts.main([]) == 0
    assert stale.read_text() == committed
    assert contracts.main(["--check"]) == 0


def test_a_page_without_the_markers_is_refused() -> None:
    with pytest.raises(SystemExit, match="no block between"):
        contracts.render("# Data contracts\n")
