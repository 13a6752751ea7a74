"""The lake: Delta tables named by the table catalog (`audotics.lake.tables`), read and written
through delta-rs (`audotics.lake.delta`, whose functions are this package's: `lake.read_arrow`,
`lake.write_arrow`, ...) and by Spark (`audotics.lake.spark`).

The delta-rs API loads on first use, so importing the catalog alone stays light: DAG files
name their Assets through it when Airflow parses them, and pyarrow.dataset costs a second.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


def __getattr__(name: str) -> Any:
    # `from audotics.lake import tables` asks for the attribute before importing the submodule:
    # answering for submodules and dunders here would load delta-rs for nothing.
    if name.startswith("__") or name in {"delta", "spark", "tables"}:
        raise AttributeError(name)
    return getattr(import_module("audotics.lake.delta"), name)
