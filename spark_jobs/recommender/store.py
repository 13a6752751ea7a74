"""Model outputs on the lake: factors (models/user_factors, models/item_factors) and the gold
tables, each partitioned by model_version and replaced whole on a rerun of that version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings


class ModelOutputError(AudoticsError):
    """A model's stored outputs are missing or do not match its data."""


def in_version(version: str) -> pc.Expression:
    return pc.field("model_version") == version


def replace_partition(settings: Settings, table: Table, version: str, data: pa.Table) -> int:
    """Write `data` as the model_version=`version` partition, replacing a previous run's."""
    if data.column_names[0] != "model_version":
        data = data.add_column(0, "model_version", pa.array([version] * data.num_rows, pa.string()))
    existing = lake.exists(settings, table)
    return lake.write_arrow(
        settings,
        table,
        data.cast(table.schema),
        mode="overwrite" if existing else "append",
        predicate=f"model_version = '{version}'" if existing else None,
        metadata={"writer": "recommender", "model_version": version},
    )


def partition_rows(settings: Settings, table: Table, version: str) -> int:
    """Rows of the model_version=`version` partition (0 without the table). Reads only the
    partition column, which comes from the files' paths: no data pages."""
    if not lake.exists(settings, table):
        return 0
    return lake.read_arrow(
        settings, table, columns=["model_version"], filter=in_version(version)
    ).num_rows


def factors_table(id_column: str, ids: np.ndarray, factors: np.ndarray) -> pa.Table:
    rank = factors.shape[1]
    values = pa.array(np.ascontiguousarray(factors, dtype=np.float32).ravel())
    offsets = pa.array(np.arange(0, len(ids) * rank + 1, rank, dtype=np.int32))
    return pa.table(
        {id_column: pa.array(ids.astype(str)), "factors": pa.ListArray.from_arrays(offsets, values)}
    )


def write_factors(
    settings: Settings,
    version: str,
    user_ids: np.ndarray,
    user_factors: np.ndarray,
    item_ids: np.ndarray,
    item_factors: np.ndarray,
) -> None:
    for table, ids, factors in (
        (tables.USER_FACTORS, user_ids, user_factors),
        (tables.ITEM_FACTORS, item_ids, item_factors),
    ):
        replace_partition(settings, table, version, factors_table(table.keys[-1], ids, factors))


def read_factors(settings: Settings, version: str, table: Table, ids: np.ndarray) -> np.ndarray:
    """The factors of `version` in the row order of `ids` (an id without factors: an error)."""
    id_column = table.keys[-1]  # (model_version, user_id | track_id)
    stored = lake.read_arrow(
        settings, table, columns=[id_column, "factors"], filter=in_version(version)
    )
    if stored.num_rows == 0:
        raise ModelOutputError(f"{table} has no factors for model {version}")
    rank = len(stored["factors"][0])
    matrix = stored["factors"].combine_chunks().flatten().to_numpy().reshape(-1, rank)
    position = pd.Index(stored[id_column].to_numpy(zero_copy_only=False)).get_indexer(ids)
    if (position < 0).any():
        raise ModelOutputError(
            f"{table} of model {version} lacks {(position < 0).sum()} of the snapshot's ids"
        )
    return matrix[position]
