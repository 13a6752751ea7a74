"""The warehouse stage of the nightly run: load what changed in the lake, then `dbt build`."""

from __future__ import annotations

from audotics import locks
from audotics.settings import Settings
from warehouse.dbt import DbtInvocation, run_dbt
from warehouse.load import LoadReport, load_warehouse


def build_warehouse(
    settings: Settings, *, full_refresh: bool = False, echo: bool = False
) -> tuple[LoadReport, DbtInvocation]:
    """Load what changed, then `dbt build` every model and test (raises WarehouseError naming
    the failures). `full_refresh` reloads raw and rebuilds the incremental models. One build
    at a time: two dbt builds at once drop and create each other's relations."""
    with locks.exclusive(settings, "warehouse build", purpose="warehouse load and dbt build"):
        report = load_warehouse(settings, full_refresh=full_refresh)
        build = ["build", "--full-refresh"] if full_refresh else ["build"]
        return report, run_dbt(settings, build, echo=echo)
