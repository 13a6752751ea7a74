"""Run a suite on a small batch (a summary: a run row, a day's counts) with Great Expectations
1.x, and say what follows from it.

A suite is declared as data (`Suite` of `Expectation`s): declaring one imports no GX, and the
GX objects are built where the suite runs. An expectation is a gate when its severity is
`critical` (the default): if a gate fails, the stage stops with a `QualityGateError` naming the
table, the batch and the expectation, and nothing downstream runs. A failing `warning` or
`info` one is reported (`Outcome.success` is False, `critical_failures` empty).

Validations run in the caller, or, inside `validation_process()`, in one separate process
started at the block's start: GX's seconds of pure-Python imports then run beside the caller's
work instead of holding its GIL, and the caller never loads GX or pandas.

Results are stored in a file-backed GX context under `<home>/gx`, and `build_data_docs` renders
them as static HTML a person can open.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import multiprocessing
import os
import re
import shutil
import sys
import threading
import time
import types
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from audotics import logs
from audotics.errors import AudoticsError
from audotics.settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)  # it logs every config save
DATA_SOURCE = "audotics"
CRITICAL, WARNING, INFO = "critical", "warning", "info"  # GX's FailureSeverity values


class QualityGateError(AudoticsError):
    """A critical expectation failed: the stage stops and downstream tasks do not run."""


class ValidationProcessError(AudoticsError):
    """The process running the validations (`validation_process`) died."""


@dataclass(frozen=True)
class Expectation:
    """One expectation as data: its class in `great_expectations.expectations`, its arguments,
    what it checks in words (the Data Docs show it) and its severity."""

    kind: str  # e.g. "ExpectColumnMaxToBeBetween"
    arguments: Mapping[str, Any]
    description: str = ""
    severity: str = CRITICAL


def expect(kind: str, description: str = "", *, severity: str = CRITICAL, **arguments: Any):
    """`Expectation(kind, arguments, description, severity)`, the arguments as keywords."""
    return Expectation(kind, arguments, description, severity)


@dataclass(frozen=True)
class Suite:
    """A suite as code: its GX name, the table it guards and its expectations."""

    name: str
    table: str
    expectations: tuple[Expectation, ...]
    description: str = ""


@dataclass
class Outcome:
    suite: str
    batch: str
    success: bool
    critical_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the failing non-critical expectations
    docs_hint: str = ""

    def raise_if_critical(self, table: str) -> None:
        if self.critical_failures:
            raise QualityGateError(
                f"data quality gate failed for table {table}, batch {self.batch}, suite "
                f"{self.suite}: " + "; ".join(self.critical_failures) + self.docs_hint
            )


@cache
def _context(root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    if context.variables.progress_bars is None:
        context.variables.progress_bars = ProgressBarsConfig(
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


def _gx_expectation(expectation: Expectation):
    import great_expectations.expectations as gxe

    return getattr(gxe, expectation.kind)(
        **expectation.arguments,
        description=expectation.description or None,
        severity=expectation.severity,
    )


# Per GX context root and suite name: the Suite last stored and its validation definition.
# Storing a suite and its validation definition costs more than running it: done once per
# process for a suite that did not change. (A definition runs without a Checkpoint: it has no
# actions to run, and a checkpoint's run checks every stored resource's freshness once more.)
_definitions: dict[tuple[Path, str], tuple[Suite, Any]] = {}
# Per GX context root: the suites and results this process stored, for an incremental build.
_stored: dict[Path, list[Any]] = {}
RESULT_FORMAT = {"result_format": "SUMMARY"}


def _definition(settings: Settings, suite: Suite, *, refresh: bool = False):
    import great_expectations as gx

    key = (settings.state_dir, suite.name)
    stored = _definitions.get(key)
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
        expectations=[_gx_expectation(e) for e in suite.expectations],
        meta={"description": suite.description},
    )
    gx_suite = context.suites.add_or_update(gx_suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=definition, suite=gx_suite)
    )
    _definitions[key] = (suite, validation)
    return validation


def _validate(
    settings: Settings, suite: Suite, rows: Sequence[Mapping[str, Any]], batch_id: str
) -> Outcome:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.exceptions.resource_freshness import (
        ResourceFreshnessAggregateError,
    )

    batch = {"dataframe": pd.DataFrame(list(rows))}
    # GX file stores refuse path separators in keys (Airflow run ids can hold them).
    run_id = gx.RunIdentifier(run_name=batch_id.replace("/", "_").replace("\\", "_"))

    def run(definition):
        return definition.run(batch_parameters=batch, run_id=run_id, result_format=RESULT_FORMAT)

    try:
        result = run(_definition(settings, suite))
    except ResourceFreshnessAggregateError:  # another process stored the suite since: again
        result = run(_definition(settings, suite, refresh=True))
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    result_id = ValidationResultIdentifier(suite_id, run_id, result.batch_id)
    _stored.setdefault(settings.state_dir, []).extend([result_id, suite_id])
    outcome = Outcome(
        suite=suite.name,
        batch=batch_id,
        success=result.success,
        docs_hint=f" (details: GX Data Docs under {gx_context_docs(settings)})",
    )
    for expectation in result.results:
        config = expectation.expectation_config
        if expectation.exception_info and expectation.exception_info.get("raised_exception"):
            outcome.critical_failures.append(
                f"{config.type} raised {expectation.exception_info.get('exception_message')}"
            )
        elif expectation.success:
            continue
        elif config.severity == CRITICAL:
            outcome.critical_failures.append(_describe(expectation))
        else:
            outcome.warnings.append(_describe(expectation))
    return outcome


def validate(
    settings: Settings, suite: Suite, rows: Sequence[Mapping[str, Any]], batch_id: str
) -> Outcome:
    """Validate the batch of `rows` (small: GX copies it for every metric) and store the
    result; in the validation process when one is open."""
    return validate_suites(settings, [suite], rows, batch_id)[0]


def validate_suites(
    settings: Settings, suites: Sequence[Suite], rows: Sequence[Mapping[str, Any]], batch_id: str
) -> list[Outcome]:
    """`validate` of each suite on the same batch, in turn, in one call of the validation
    process."""
    outcomes = _run(_validate_suites, settings, suites, rows, batch_id)
    for suite, outcome in zip(suites, outcomes, strict=True):
        for warning in outcome.warnings:
            log.warning("GX %s on %s: %s", suite.name, batch_id, warning)
        log.info(
            "GX %s on %s: %s, %d critical failures",
            suite.name,
            batch_id,
            "success" if outcome.success else "failed",
            len(outcome.critical_failures),
        )
    return outcomes


def _validate_suites(
    settings: Settings, suites: Sequence[Suite], rows: Sequence[Mapping[str, Any]], batch_id: str
) -> list[Outcome]:
    return [_validate(settings, suite, rows, batch_id) for suite in suites]


# --- where validations run ---------------------------------------------------------------------

_process: ProcessPoolExecutor | None = None
PARENT_CHECK_S = 1.0  # how often the validation process checks that its caller lives


def _exit_with(parent: int) -> None:
    """End this process once `parent` is gone (killed, say): a pool's idle worker would wait
    for work forever."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


# GX imports these at its own import, for expectations and charts (KL divergence, KS tests)
# that the project's suites do not use: a third of its import time.
DEFERRED_IMPORTS = ("scipy.stats", "altair")


class Deferred(types.ModuleType):
    """Stands in `sys.modules` for a module not imported yet: reading any attribute it lacks
    imports the real module (in its place from then on) and reads it there."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _start_process(caller: int, log_file: Path | None) -> None:
    """In the validation process: end with the caller, log to its log file, import GX."""
    threading.Thread(target=_exit_with, args=(caller,), daemon=True).start()
    if log_file:
        logs.log_everything_to(log_file)
    # It validates pandas frames only: GX's optional Spark and SQL integrations (a second of
    # imports) stay unloaded, the modules GX needs only for what the suites never use load
    # when first used, and no garbage collection runs amid GX's thousands of imports.
    for optional in ("pyspark", "sqlalchemy"):
        sys.modules.setdefault(optional, None)  # `import pyspark` then raises ImportError
    for name in DEFERRED_IMPORTS:
        sys.modules.setdefault(name, Deferred(name))
    gc.disable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations  # noqa: F401
    finally:
        gc.enable()
    # Run first (atexit calls the last registered first): the caller's shutdown would wait
    # 0.7 s for the teardown of GX's thousands of modules.
    atexit.register(logs.exit_now)


def _store(settings: Settings | None, suites: Sequence[Suite]) -> None:
    """Store the suites in the settings' GX context (once GX is loaded)."""
    for suite in suites:
        _definition(settings, suite)


@contextmanager
def validation_process(
    settings: Settings | None = None, suites: Sequence[Suite] = ()
) -> Iterator[None]:
    """Run the validations and Data Docs builds of this block in one separate process, started
    (and loading GX) right away; nested blocks share the outer one's. `suites` (of an outer or
    a nested block) are stored in the GX context of `settings` there as soon as GX has loaded,
    so that their first validations run at once. A process that has loaded GX already (a test
    session, a notebook) keeps validating in itself: nothing to gain."""
    global _process
    outer = _process is None and "great_expectations" not in sys.modules
    if outer:
        _process = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),  # the caller runs threads: no fork
            initializer=_start_process,
            initargs=(os.getpid(), logs.log_file()),
        )
    try:
        # The first task also starts the process (a pool starts it lazily). The suites are
        # stored once GX has loaded; an error there is raised again by their first validation.
        if _process is not None and (outer or suites):
            _process.submit(_store, settings, suites)
        yield
    finally:
        if outer:
            process, _process = _process, None
            process.shutdown(cancel_futures=True)


def _run(function, *args):
    """`function(*args)`, in the validation process when one is open."""
    if _process is None:
        return function(*args)
    try:
        return _process.submit(function, *args).result()
    except BrokenProcessPool as exc:
        raise ValidationProcessError(
            f"the process running the GX validations died ({exc}): see the log file"
        ) from exc


def gx_context_docs(settings: Settings) -> Path:
    return settings.state_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_data_docs(settings: Settings, *, incremental: bool = False) -> Path:
    """Render the stored validation results as static HTML; returns the index page. With
    `incremental`, only the suites and results this process (or the validation process)
    stored are rendered (and the index): a run's cost then does not grow with the history."""
    index = _run(_build_data_docs, settings, incremental)
    log.info("GX Data Docs: %s", index)
    return index


def _build_data_docs(settings: Settings, incremental: bool) -> Path:
    stored = _stored.get(settings.state_dir)
    if incremental and not stored:
        return gx_context_docs(settings) / "index.html"
    started = time.time() - 1  # file times may be coarser than the clock
    gx_context(settings).build_data_docs(resource_identifiers=stored if incremental else None)
    site = gx_context_docs(settings)
    use_vendored_assets(site, written_since=started)
    return site / "index.html"


# What `make setup` unpacks (pinned npm packages, see VENDORED in the Makefile): shared by every
# platform instance of this checkout, so not under a settings' state folder.
VENDOR_DIR = Path(__file__).resolve().parents[1] / ".audotics" / "vendor"
# The CDN URLs in GX 1.x's Data Docs templates -> the same file in the vendored packages.
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
    # The charts of a validation page.
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# GX's logo, which the navbar loads from GX's servers (with the data context's id in the URL),
# and the dark theme's logo in GX's stylesheet: both pointed at the logo GX ships in the site.
REMOTE_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
    r"(logo-long\.png\?[^\"']*|full_logo_dark\.png)"
)
SITE_IMAGES = Path("static") / "images"
LOGO = "logo-long.png"
SITE_STYLESHEET = Path("static") / "styles" / "data_docs_default_styles.css"
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
    for page in [*site.rglob("*.html"), site / SITE_STYLESHEET]:
        if not page.exists() or page.stat().st_mtime < written_since:
            continue
        text = page.read_text(encoding="utf-8")
        local = os.path.relpath(target, page.parent)
        rewritten = text
        for url, name in CDN_ASSETS.items():
            rewritten = rewritten.replace(url, f"{local}/{name}")
        logo = os.path.relpath(site / SITE_IMAGES / LOGO, page.parent)
        rewritten = REMOTE_LOGO.sub(logo, rewritten)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
