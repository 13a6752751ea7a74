"""The one-way architecture: imports only point down the layers that pyproject.toml declares
([tool.importlinter]), and lake tables are named through the catalog, never by strings."""

from __future__ import annotations

import ast
import itertools
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from audotics.lake import tables
from tests.support import REPO

CATALOG = "audotics/lake/tables.py"
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
ROOT_PACKAGES: list[str] = CONFIG["root_packages"]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
LAYERS = sorted({table.layer for table in tables.TABLES})
TABLE_NAMES = sorted({table.name for table in tables.TABLES})


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the contracts of `root/pyproject.toml`, on the packages in `root`."""
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def python_files() -> list[Path]:
    """The repository's Python files, tracked or new (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).is_file()]


def test_the_import_contracts_hold() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_from_the_core_breaks_the_contracts(tmp_path: Path) -> None:
    for package in ROOT_PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "audotics" / "settings.py").open("a") as settings:
        settings.write("import serving  # planted\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "audotics.settings -> serving" in result.stdout, result.stdout + result.stderr


def test_no_two_top_level_packages_import_each_other(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))  # where grimp finds `dags` (no package of its own)
    graph = grimp.build_graph(*ROOT_PACKAGES, cache_dir=None)
    cycles = [
        (a, b)
        for a, b in itertools.combinations(ROOT_PACKAGES, 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == [], "packages importing each other, directly or through others"


def test_no_layer_and_table_string_pairs_outside_the_catalog() -> None:
    """`lake.read_arrow(settings, tables.SILVER_EVENTS)`, never the layer and the table name as
    two strings: tests included. Scratch tables of tests live in a layer of their own."""
    pair = re.compile(rf"""["']({"|".join(LAYERS)})["']\s*,\s*["']({"|".join(TABLE_NAMES)})["']""")
    found = [
        f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}: {match[0]}"
        for path in python_files()
        if path.relative_to(REPO).as_posix() != CATALOG
        for text in [path.read_text()]
        for match in pair.finditer(text)
    ]
    assert found == [], "name lake tables by their catalog constant (audotics.lake.tables)"


def string_constants(tree: ast.AST) -> list[ast.Constant]:
    """Every string literal except docstrings (a statement that is only a string)."""
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    ]  # fmt: skip


def test_no_table_paths_as_strings_in_code_outside_the_catalog() -> None:
    """A string that is a catalog path, or has one as a segment of a longer path or URI
    (`"silver/events"`, `f"{root}/silver/events"`), names a table behind the catalog's back:
    use `table.path` or `str(table)`. Prose that mentions a table (messages, help) may, and
    tests may pin the public paths literally."""
    paths = "|".join(re.escape(table.path) for table in tables.TABLES)
    as_path = re.compile(rf"(?:^|/)(?:{paths})(?:/|$)")
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
        for path in python_files()
        if path.relative_to(REPO).as_posix() != CATALOG
        and path.relative_to(REPO).parts[0] != "tests"
        for node in string_constants(ast.parse(path.read_text()))
        if as_path.search(node.value.strip())
    ]
    assert found == [], "name lake tables through the catalog (audotics.lake.tables)"
