"""Run a suite on a pandas batch with Great Expectations 1.x, and say what follows from it.

Two kinds of expectation, told apart by `meta`:
- `meta={"reason": "..."}`: a row-level rule. Rows that break it are quarantined with that
  reason; the batch goes on without them.
- `meta={"critical": True}`: a gate. If it fails, the stage stops with a `QualityGateError`
  naming the table, the batch and the expectation, and nothing downstream runs.

Results are stored in a file-backed GX context under `<home>/gx`, and `build_data_docs` renders
them as static HTML a person can open.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from audotics.errors import AudoticsError
from audotics.settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)  # it logs every config save
ROW_ID = "_row_id"


class QualityGateError(AudoticsError):
    """A critical expectation failed: the stage stops and downstream tasks do not run."""


@dataclass(frozen=True)
class Suite:
    """A suite as code: its GX name, the table it guards and its expectations."""

    name: str
    table: str
    expectations: tuple
    description: str = ""

    def columns_read(self) -> list[str]:
        """The batch columns the expectations look at, in first-use order."""
        names: dict[str, None] = {}
        for expectation in self.expectations:
            for key in ("column", "column_A", "column_B"):
                if value := getattr(expectation, key, None):
                    names[value] = None
        return list(names)


@dataclass
class Outcome:
    suite: str
    batch: str
    success: bool
    reasons_by_row: dict[int, list[str]] = field(default_factory=dict)
    critical_failures: list[str] = field(default_factory=list)
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


def validate(settings: Settings, suite: Suite, batch: pd.DataFrame, batch_id: str) -> Outcome:
    """Validate `batch` (which must carry a `_row_id` column for row-level suites)."""
    import great_expectations as gx

    context = gx_context(settings)
    source = context.data_sources.add_or_update_pandas("audotics")
    asset_name = suite.table.replace("/", ".")
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    definitions = {d.name: d for d in asset.batch_definitions}
    definition = definitions.get("batch") or asset.add_batch_definition_whole_dataframe("batch")

    gx_suite = gx.ExpectationSuite(name=suite.name, meta={"description": suite.description})
    for expectation in suite.expectations:
        gx_suite.add_expectation(expectation.copy(deep=True))  # GX models are pydantic v1
    gx_suite = context.suites.add_or_update(gx_suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=definition, suite=gx_suite)
    )
    row_level = ROW_ID in batch.columns
    result_format: dict = {"result_format": "SUMMARY"}
    if row_level:
        # Only the failing row ids are needed; the values would be serialised for nothing.
        result_format = {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [ROW_ID],
            "exclude_unexpected_values": True,
            "partial_unexpected_count": 0,
        }
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite.name, validation_definitions=[validation], result_format=result_format
        )
    )
    run = checkpoint.run(
        batch_parameters={"dataframe": batch},
        # GX file stores refuse path separators in keys (Airflow run ids can hold them).
        run_id=gx.RunIdentifier(run_name=batch_id.replace("/", "_").replace("\\", "_")),
    )
    outcome = Outcome(
        suite=suite.name,
        batch=batch_id,
        success=run.success,
        docs_hint=f" (details: GX Data Docs under {gx_context_docs(settings)})",
    )
    reasons: dict[int, list[str]] = defaultdict(list)
    for validation_result in run.run_results.values():
        for result in validation_result.results:
            meta = result.expectation_config.meta or {}
            if result.exception_info and result.exception_info.get("raised_exception"):
                outcome.critical_failures.append(
                    f"{result.expectation_config.type} raised "
                    f"{result.exception_info.get('exception_message')}"
                )
            elif result.success:
                continue
            elif "reason" in meta and row_level:
                for row_id in _failing_row_ids(result.result):
                    reasons[row_id].append(meta["reason"])
            elif meta.get("critical", True):
                outcome.critical_failures.append(_describe(result))
    outcome.reasons_by_row = dict(reasons)
    log.info(
        "GX %s on %s: %d rows quarantined, %d critical failures",
        suite.name,
        batch_id,
        len(outcome.reasons_by_row),
        len(outcome.critical_failures),
    )
    return outcome


def _failing_row_ids(result: dict) -> list[int]:
    # Without unexpected values GX gives one {_row_id: [ids]}; with them, one dict per row.
    ids: list[int] = []
    for entry in result.get("unexpected_index_list") or []:
        value = entry[ROW_ID]
        ids.extend(int(v) for v in (value if isinstance(value, list) else [value]))
    return ids


def gx_context_docs(settings: Settings) -> Path:
    return settings.state_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_data_docs(settings: Settings) -> Path:
    """Render every stored validation result as static HTML; returns the index page."""
    gx_context(settings).build_data_docs()
    index = gx_context_docs(settings) / "index.html"
    log.info("GX Data Docs: %s", index)
    return index
