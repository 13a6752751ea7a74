"""Run a suite on a small pandas batch (a summary: a run row, a day's counts) with Great
Expectations 1.x, and say what follows from it.

An expectation is a gate unless it says otherwise (`meta={"critical": False}`, or a GX severity
below critical): if a gate fails, the stage stops with a `QualityGateError` naming the table,
the batch and the expectation, and nothing downstream runs. A failing non-critical one is a
warning (`Outcome.success` is False, `critical_failures` empty).

Results are stored in a file-backed GX context under `<home>/gx`, and `build_data_docs` renders
them as static HTML a person can open.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from audotics.errors import AudoticsError
from audotics.settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)  # it logs every config save
DATA_SOURCE = "audotics"


class QualityGateError(AudoticsError):
    """A critical expectation failed: the stage stops and downstream tasks do not run."""


@dataclass(frozen=True)
class Suite:
    """A suite as code: its GX name, the table it guards and its expectations."""

    name: str
    table: str
    expectations: tuple
    description: str = ""


@dataclass
class Outcome:
    suite: str
    batch: str
    success: bool
    critical_failures: list[str] = field(default_factory=list)
    docs_hint: str = ""

    def raise_if_critical(self, table: str) -> None:
        if self.critical_failures:
            raise QualityGateError(
                f"data quality gate failed for table {table}, batch {self.batch}, suite "
                f"{self.suite}: " + "; ".join(self.critical_failures) + self.docs_hint
            )


_warming: list[threading.Thread] = []


def warm_up() -> None:
    """Import GX in a background thread, so that its seconds of imports overlap the work a
    process does before its first validation. Every use of GX goes through `gx_module`,
    which waits for it: two threads importing GX at once can see it half initialized."""
    if not _warming and "great_expectations" not in sys.modules:
        thread = threading.Thread(
            target=importlib.import_module, args=("great_expectations",), daemon=True
        )
        _warming.append(thread)
        thread.start()


def gx_module(name: str = "great_expectations") -> ModuleType:
    """A GX module (`great_expectations.expectations`, ...), once any warm-up import ended."""
    for thread in _warming:
        thread.join()
    return importlib.import_module(name)


@cache
def _context(root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gx = gx_module()
        types = gx_module("great_expectations.data_context.types.base")

    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    if context.variables.progress_bars is None:
        context.variables.progress_bars = types.ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        context.variables.save()
    return context


def gx_context(settings: Settings):
    return _context(settings.state_dir / "gx")


def _describe(result) -> str:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    observed = result.result.get("observed_value")
    seen = f", observed {observed!r}" if observed is not None else ""
    count = result.result.get("unexpected_count")
    bad = f", {count} unexpected" if count else ""
    return f"{config.type}({kwargs}){seen}{bad}"


def _is_critical(config: Any) -> bool:
    severities = gx_module("great_expectations.expectations.metadata_types").FailureSeverity

    meta = config.meta or {}
    return meta.get("critical", config.severity == severities.CRITICAL)


# Per GX context root and suite name: the Suite last stored and its checkpoint. Storing a suite,
# its validation definition and checkpoint costs more than running it: done once per process
# for a suite that did not change.
_checkpoints: dict[tuple[Path, str], tuple[Suite, Any]] = {}
# Per GX context root: the suites and results this process stored, for an incremental build.
_stored: dict[Path, list[Any]] = {}


def _checkpoint(settings: Settings, suite: Suite, *, refresh: bool = False):
    gx = gx_module()

    key = (settings.state_dir, suite.name)
    stored = _checkpoints.get(key)
    if stored and stored[0] == suite and not refresh:
        return stored[1]
    context = gx_context(settings)
    # Get, not add_or_update: updating the data source drops the assets other suites use.
    source = context.data_sources.all().get(DATA_SOURCE) or context.data_sources.add_pandas(
        DATA_SOURCE
    )
    asset_name = suite.table.replace("/", ".")
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    definitions = {d.name: d for d in asset.batch_definitions}
    definition = definitions.get("batch") or asset.add_batch_definition_whole_dataframe("batch")
    # In the constructor: added one by one, each expectation would be saved on its own.
    gx_suite = gx.ExpectationSuite(
        name=suite.name,
        expectations=[e.copy(deep=True) for e in suite.expectations],  # GX models: pydantic v1
        meta={"description": suite.description},
    )
    gx_suite = context.suites.add_or_update(gx_suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=definition, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite.name,
            validation_definitions=[validation],
            result_format={"result_format": "SUMMARY"},
        )
    )
    _checkpoints[key] = (suite, checkpoint)
    return checkpoint


def validate(settings: Settings, suite: Suite, batch: pd.DataFrame, batch_id: str) -> Outcome:
    """Validate `batch` (small: GX copies it for every metric) and store the result."""
    gx = gx_module()
    freshness = gx_module("great_expectations.exceptions.resource_freshness")

    # GX file stores refuse path separators in keys (Airflow run ids can hold them).
    run_id = gx.RunIdentifier(run_name=batch_id.replace("/", "_").replace("\\", "_"))
    try:
        run = _checkpoint(settings, suite).run(batch_parameters={"dataframe": batch}, run_id=run_id)
    except (
        freshness.ResourceFreshnessAggregateError
    ):  # another process stored the suite since: again
        run = _checkpoint(settings, suite, refresh=True).run(
            batch_parameters={"dataframe": batch}, run_id=run_id
        )
    stored = _stored.setdefault(settings.state_dir, [])
    for result_id in run.run_results:  # ValidationResultIdentifiers
        stored.extend([result_id, result_id.expectation_suite_identifier])
    outcome = Outcome(
        suite=suite.name,
        batch=batch_id,
        success=run.success,
        docs_hint=f" (details: GX Data Docs under {gx_context_docs(settings)})",
    )
    for validation_result in run.run_results.values():
        for result in validation_result.results:
            config = result.expectation_config
            if result.exception_info and result.exception_info.get("raised_exception"):
                outcome.critical_failures.append(
                    f"{config.type} raised {result.exception_info.get('exception_message')}"
                )
            elif result.success:
                continue
            elif _is_critical(config):
                outcome.critical_failures.append(_describe(result))
            else:
                log.warning("GX %s on %s: %s", suite.name, batch_id, _describe(result))
    log.info(
        "GX %s on %s: %s, %d critical failures",
        suite.name,
        batch_id,
        "success" if outcome.success else "failed",
        len(outcome.critical_failures),
    )
    return outcome


def gx_context_docs(settings: Settings) -> Path:
    return settings.state_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_data_docs(settings: Settings, *, incremental: bool = False) -> Path:
    """Render the stored validation results as static HTML; returns the index page. With
    `incremental`, only the suites and results this process stored are rendered (and the
    index): a run's cost then does not grow with the history."""
    stored = _stored.get(settings.state_dir)
    if incremental and not stored:
        return gx_context_docs(settings) / "index.html"
    started = time.time() - 1  # file times may be coarser than the clock
    gx_context(settings).build_data_docs(resource_identifiers=stored if incremental else None)
    site = gx_context_docs(settings)
    use_vendored_assets(site, written_since=started)
    index = site / "index.html"
    log.info("GX Data Docs: %s", index)
    return index


# What `make setup` unpacks (pinned npm packages, see VENDORED in the Makefile): shared by every
# platform instance of this checkout, so not under a settings' state folder.
VENDOR_DIR = Path(__file__).resolve().parents[1] / ".audotics" / "vendor"
# The CDN URLs in GX 1.x's Data Docs templates -> the same file in the vendored packages. Left
# out: vega, vega-lite and vega-embed (the charts of a validation page; its tables show without).
CDN_ASSETS = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap/dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap/dist/js/bootstrap.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js/dist/umd/popper.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table/dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    # The templates ask for 1.19.0's stylesheet beside 1.19.1's script: one version serves both.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free/css/all.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
}
VENDOR_EXTRA = ("@fortawesome/fontawesome-free/webfonts",)  # all.min.css loads ../webfonts/*


def use_vendored_assets(
    site: Path, vendor: Path = VENDOR_DIR, *, written_since: float = 0.0
) -> None:
    """Copy the vendored JS/CSS into `site`/static/vendor (once) and point the site's HTML
    written since `written_since` (a build's pages; earlier ones were rewritten by their own
    build) at them instead of the CDNs, so the Data Docs (whose index lists its runs by
    JavaScript) show their content offline. Without the vendored packages the CDN links stay,
    with a warning."""
    missing = [
        name for name in (*CDN_ASSETS.values(), *VENDOR_EXTRA) if not (vendor / name).exists()
    ]
    if missing:
        log.warning(
            "GX Data Docs keep their CDN links (they need the internet): %s is missing from %s; "
            "run `make setup`",
            missing[0],
            vendor,
        )
        return
    target = site / "static" / "vendor"
    for name in CDN_ASSETS.values():
        if not (target / name).exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(vendor / name, target / name)
    for name in VENDOR_EXTRA:
        if not (target / name).exists():
            shutil.copytree(vendor / name, target / name)
    for page in site.rglob("*.html"):
        if page.stat().st_mtime < written_since:
            continue
        html = page.read_text(encoding="utf-8")
        local = os.path.relpath(target, page.parent)
        rewritten = html
        for url, name in CDN_ASSETS.items():
            rewritten = rewritten.replace(url, f"{local}/{name}")
        if rewritten != html:
            page.write_text(rewritten, encoding="utf-8")
