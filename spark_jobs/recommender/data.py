"""Interactions in memory: read them (a file, or the interactions feature view of the lake),
index the ids, fingerprint their content, build the matrix.

One `Interactions` holds one row per (user, item) pair: duplicates are merged on indexing
(weights summed, latest timestamp kept), so a split can never put the same pair on both sides.
Splits keep the full id vocabulary, so every matrix of one data set has the same shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.sparse as sp

from audotics.errors import AudoticsError
from audotics.settings import Settings
from feature_store.definitions import ALS_RECOMMENDER, INTERACTIONS
from feature_store.offline import read_snapshot

FILE_FORMATS = ("csv", "parquet", "movielens")
COLUMNS = ("user_id", "item_id", "weight", "timestamp")
MOVIELENS_COLUMNS = ("user_id", "item_id", "weight", "timestamp")  # u.data: rating is the weight
EPOCH = pd.Timestamp(0, tz="UTC")


class InteractionsError(AudoticsError):
    """Interactions that cannot be used: the message names the file (or table), line and reason."""


@dataclass(frozen=True)
class Interactions:
    """Unique (user, item) pairs with a positive weight, over a fixed id vocabulary."""

    user_ids: np.ndarray  # external id of user index u
    item_ids: np.ndarray  # external id of item index i
    users: np.ndarray  # int32 user index of each pair
    items: np.ndarray  # int32 item index of each pair
    weights: np.ndarray  # float32, > 0
    timestamps: np.ndarray | None  # int64 epoch seconds of the pair's latest event, if known

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The pairs where `mask` is true, with the same vocabulary."""
        return Interactions(
            self.user_ids,
            self.item_ids,
            self.users[mask],
            self.items[mask],
            self.weights[mask],
            None if self.timestamps is None else self.timestamps[mask],
        )

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the content: the ids and, in (user id, item id) order, each pair's weight
        and timestamp. Independent of row order and file layout, so the same rows rewritten
        (a rebuilt partition, a new table version) keep it. Sorting integer codes, not
        strings: about a second for ten million pairs."""
        user_order, item_order = np.argsort(self.user_ids), np.argsort(self.item_ids)
        user_rank = np.empty(self.n_users, np.int64)
        user_rank[user_order] = np.arange(self.n_users)
        item_rank = np.empty(self.n_items, np.int64)
        item_rank[item_order] = np.arange(self.n_items)
        pairs = user_rank[self.users] * self.n_items + item_rank[self.items]
        order = np.argsort(pairs, kind="stable")
        digest = hashlib.sha256()
        for ids in (self.user_ids[user_order], self.item_ids[item_order]):
            digest.update(json.dumps([str(i) for i in ids]).encode())
        digest.update(pairs[order].tobytes())
        digest.update(self.weights[order].tobytes())
        if self.timestamps is not None:
            digest.update(self.timestamps[order].tobytes())
        return digest.hexdigest()

    def matrix(self) -> sp.csr_matrix:
        """The users x items matrix of weights (float32, CSR)."""
        return sp.csr_matrix(
            (self.weights, (self.users, self.items)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )


def index_interactions(table: pa.Table, *, source: str = "interactions") -> Interactions:
    """Turn a table of `user_id, item_id, weight[, timestamp]` into indexed, unique pairs."""
    if table.num_rows == 0:
        raise InteractionsError(f"{source}: no interactions")
    user_codes, user_ids = _encode(table["user_id"])
    item_codes, item_ids = _encode(table["item_id"])
    weights = table["weight"].to_numpy().astype(np.float32)
    timestamps = (
        table["timestamp"].to_numpy().astype(np.int64)
        if "timestamp" in table.column_names
        else None
    )
    pair = user_codes.astype(np.int64) * len(item_ids) + item_codes
    unique_pairs, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    if len(unique_pairs) < len(pair):  # merge repeated pairs: weights add up, latest time wins
        weights = np.bincount(inverse, weights=weights).astype(np.float32)
        if timestamps is not None:
            latest = np.full(len(unique_pairs), np.iinfo(np.int64).min)
            np.maximum.at(latest, inverse, timestamps)
            timestamps = latest
    else:
        weights, timestamps = weights[first], None if timestamps is None else timestamps[first]
    return Interactions(
        user_ids=user_ids,
        item_ids=item_ids,
        users=(unique_pairs // len(item_ids)).astype(np.int32),
        items=(unique_pairs % len(item_ids)).astype(np.int32),
        weights=weights,
        timestamps=timestamps,
    )


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    encoded = pc.dictionary_encode(column).combine_chunks()
    return encoded.indices.to_numpy().astype(np.int32), encoded.dictionary.to_numpy(
        zero_copy_only=False
    )


# --- files ------------------------------------------------------------------------------------


def read_interactions_file(path: str | Path, file_format: str = "csv") -> pa.Table:
    """Read and validate `user_id,item_id[,weight][,timestamp]` (csv with a header, parquet) or
    MovieLens `u.data` (tab-separated user, item, rating, timestamp; the rating is the weight).

    A missing weight is 1. A timestamp is epoch seconds or ISO-8601.
    """
    path = Path(path)
    if file_format not in FILE_FORMATS:
        raise InteractionsError(
            f"{path}: unknown format {file_format!r}, use one of {FILE_FORMATS}"
        )
    if not path.is_file():
        raise InteractionsError(f"{path}: no such file")
    try:
        if file_format == "parquet":
            raw, first_line = pq.read_table(path), None
        else:
            raw, first_line = _read_text(path, file_format)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InteractionsError(f"{path}: cannot be read as {file_format}: {exc}") from exc
    return _validated(raw, f"{path}", first_line)


def _read_text(path: Path, file_format: str) -> tuple[pa.Table, int]:
    """Every column as text, so validation (not the parser) reports bad values with their line.
    Single-threaded, so the parser knows the line of a row with the wrong number of fields."""
    if file_format == "movielens":
        read_options = pacsv.ReadOptions(column_names=list(MOVIELENS_COLUMNS), use_threads=False)
        delimiter, first_line = "\t", 1
    else:
        header = path.open(encoding="utf-8").readline().strip().split(",")
        missing = {"user_id", "item_id"} - set(header)
        if missing:
            raise InteractionsError(
                f"{path}, line 1: the header {header} lacks {sorted(missing)}; expected "
                "user_id,item_id[,weight][,timestamp]"
            )
        read_options, delimiter, first_line = pacsv.ReadOptions(use_threads=False), ",", 2
    invalid_rows: list[pacsv.InvalidRow] = []

    def reject(row: pacsv.InvalidRow) -> str:
        invalid_rows.append(row)
        return "error"

    text_columns = pacsv.ConvertOptions(
        column_types=dict.fromkeys(COLUMNS, pa.string()), strings_can_be_null=False
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=reject)
    try:
        table = pacsv.read_csv(path, read_options, parse_options, text_columns)
    except pa.ArrowInvalid:
        if not invalid_rows:
            raise
        row = invalid_rows[0]
        raise InteractionsError(
            f"{path}, line {row.number}: {row.actual_columns} fields where "
            f"{row.expected_columns} are expected ({row.text!r})"
        ) from None
    return table, first_line


def _validated(raw: pa.Table, source: str, first_line: int | None) -> pa.Table:
    def where(row: int) -> str:
        return (
            f"{source}, line {row + first_line}"
            if first_line is not None
            else f"{source}, row {row}"
        )

    frame = raw.select([c for c in COLUMNS if c in raw.column_names]).to_pandas()
    for column in ("user_id", "item_id"):
        if column not in frame:
            raise InteractionsError(f"{source}: no {column} column")
        frame[column] = frame[column].astype("string").str.strip()
        empty = frame[column].isna() | (frame[column] == "")
        if empty.any():
            raise InteractionsError(f"{where(int(np.argmax(empty)))}: {column} is empty")
    if "weight" in frame:
        weight = pd.to_numeric(frame["weight"], errors="coerce")
        bad = weight.isna() | ~np.isfinite(weight) | (weight <= 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise InteractionsError(
                f"{where(row)}: weight {frame['weight'].iloc[row]!r} is not a number > 0"
            )
    else:
        weight = pd.Series(1.0, index=frame.index)
    columns = {
        "user_id": pa.array(frame["user_id"], pa.string()),
        "item_id": pa.array(frame["item_id"], pa.string()),
        "weight": pa.array(weight.to_numpy(np.float64)),
    }
    if "timestamp" in frame:
        seconds = _epoch_seconds(frame["timestamp"])
        if seconds.isna().any():
            row = int(np.argmax(seconds.isna()))
            raise InteractionsError(
                f"{where(row)}: timestamp {frame['timestamp'].iloc[row]!r} is neither epoch "
                "seconds nor ISO-8601"
            )
        columns["timestamp"] = pa.array(seconds.to_numpy(np.int64))
    return pa.table(columns)


def _epoch_seconds(values: pd.Series) -> pd.Series:
    """Epoch seconds as given, or parsed from ISO-8601; NaN where neither."""
    if pd.api.types.is_datetime64_any_dtype(values):
        values = values.dt.tz_localize("UTC") if values.dt.tz is None else values
        return (values - EPOCH).dt.total_seconds()
    seconds = pd.to_numeric(values, errors="coerce")
    text = seconds.isna()
    if text.any():
        parsed = pd.to_datetime(values[text], utc=True, errors="coerce", format="ISO8601")
        seconds[text] = (parsed - EPOCH).dt.total_seconds()
    return seconds


# --- the lake ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The training input: the interactions view as of one date, at one table version."""

    as_of: dt.date
    data_version: int
    interactions: Interactions


def load_snapshot(
    settings: Settings, as_of: dt.date | None = None, data_version: int | None = None
) -> Snapshot:
    """The interactions the recommender's feature service reads, as of `as_of` (default: the
    newest snapshot), pinned to a table version (default: the current one) so later steps of
    the same run see the same rows."""
    snapshot = read_snapshot(
        settings, ALS_RECOMMENDER.projection(INTERACTIONS), as_of, version=data_version
    )
    table = snapshot.rows
    source = f"{INTERACTIONS.table} as of {snapshot.as_of} (version {snapshot.table_version})"
    nonpositive = pc.sum(pc.less_equal(table["confidence"], 0)).as_py()
    if nonpositive:
        raise InteractionsError(f"{source}: {nonpositive} rows with confidence <= 0")
    renamed = pa.table(
        {
            "user_id": table["user_id"],
            "item_id": table["track_id"],
            "weight": table["confidence"],
            "timestamp": pc.cast(
                pc.divide(pc.cast(table["last_ts"], pa.int64()), 1_000_000), pa.int64()
            ),
        }
    )
    return Snapshot(
        snapshot.as_of, snapshot.table_version, index_interactions(renamed, source=source)
    )
