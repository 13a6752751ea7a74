"""Reading interaction files (with errors that name file, line and problem), and splits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from demo.synthetic import clustered_interactions
from spark_jobs.recommender.data import (
    InteractionsError,
    index_interactions,
    read_interactions_file,
)
from spark_jobs.recommender.splits import (
    DAY_SECONDS,
    last_days_split,
    parse_split,
    stratified_split,
    temporal_split,
)


def synthetic(n_users: int = 200, n_items: int = 100, n: int = 5_000, seed: int = 1):
    users, items, plays = clustered_interactions(n_users, n_items, n, seed=seed)
    timestamps = 1_700_000_000 + np.random.default_rng(seed).integers(0, 30 * DAY_SECONDS, n)
    return index_interactions(
        pa.table(
            {
                "user_id": users.astype(str),
                "item_id": items.astype(str),
                "weight": plays.astype(np.float64),
                "timestamp": timestamps,
            }
        )
    )


def test_csv_with_iso_and_epoch_timestamps_and_merged_duplicates(tmp_path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user_id,item_id,weight,timestamp\n"
        "u1,a,2,1700000000\n"
        "u1,a,3,2023-11-14T22:15:00Z\n"
        "u2,b,1,1700000100\n"
    )
    data = index_interactions(read_interactions_file(path))
    assert len(data) == 2  # u1/a merged: weights add up, latest time kept
    row = int(np.flatnonzero(data.user_ids[data.users] == "u1")[0])
    assert data.weights[row] == 5.0
    assert data.timestamps[row] == 1_700_000_100
    assert data.matrix().shape == (2, 2)


def test_weight_and_timestamp_are_optional(tmp_path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("user_id,item_id\nu1,a\nu2,a\n")
    table = read_interactions_file(path)
    assert table["weight"].to_pylist() == [1.0, 1.0]
    assert "timestamp" not in table.column_names


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user_id,item_id,weight\nu1,a,1\nu2,b,abc\n", "line 3: weight 'abc' is not a number > 0"),
        ("user_id,item_id,weight\nu1,a,1\nu2,b,-2\n", "line 3: weight '-2' is not a number > 0"),
        ("user_id,item_id\nu1,a\n,b\n", "line 3: user_id is empty"),
        ("user_id,item_id,weight\nu1,a,1\nu2,b\n", "line 3: 2 fields where 3 are expected"),
        ("user,item\nu1,a\n", "line 1: the header ['user', 'item'] lacks"),
        ("user_id,item_id,timestamp\nu1,a,yesterday\n", "line 2: timestamp 'yesterday' is neither"),
    ],
)
def test_malformed_files_name_file_line_and_problem(tmp_path, content, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InteractionsError) as error:
        read_interactions_file(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_movielens_format(tmp_path) -> None:
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n")
    data = index_interactions(read_interactions_file(path, "movielens"))
    assert (data.n_users, data.n_items, len(data)) == (2, 2, 3)
    assert sorted(data.weights.tolist()) == [3.0, 3.0, 5.0]
    bad = tmp_path / "bad.data"
    bad.write_text("196\t242\t3\t881250949\n186\t302\tx\t891717742\n")
    with pytest.raises(InteractionsError, match="line 2: weight 'x'"):
        read_interactions_file(bad, "movielens")


def test_stratified_split_keeps_every_user_in_train() -> None:
    data = synthetic()
    split = stratified_split(data, 0.75, seed=3)
    assert len(split.train) + len(split.test) == len(data)
    per_user = np.bincount(data.users, minlength=data.n_users)
    in_train = np.bincount(split.train.users, minlength=data.n_users)
    in_test = np.bincount(split.test.users, minlength=data.n_users)
    assert (in_train[per_user > 0] >= 1).all()
    assert (in_test == np.minimum(np.rint(0.25 * per_user), per_user - 1)).all()
    # no pair on both sides
    train_pairs = set(zip(split.train.users.tolist(), split.train.items.tolist(), strict=True))
    assert not train_pairs & set(
        zip(split.test.users.tolist(), split.test.items.tolist(), strict=True)
    )
    # the same seed gives the same split
    again = stratified_split(data, 0.75, seed=3)
    assert np.array_equal(again.test.items, split.test.items)


def test_temporal_split_has_no_test_event_before_the_cutoff() -> None:
    data = synthetic()
    cutoff = 1_700_000_000 + 20 * DAY_SECONDS
    split = temporal_split(data, cutoff, horizon_seconds=5 * DAY_SECONDS)
    assert (split.train.timestamps < cutoff).all()
    assert (split.test.timestamps >= cutoff).all()
    assert (split.test.timestamps < cutoff + 5 * DAY_SECONDS).all()
    last_week = last_days_split(data, 7)
    assert last_week.test.timestamps.min() >= last_week.train.timestamps.max()
    with pytest.raises(InteractionsError, match="both sides"):
        temporal_split(data, 0)


def test_split_specs() -> None:
    data = synthetic()
    assert len(parse_split("stratified:0.5", 1)(data).test) > 0
    assert len(parse_split("temporal:3", 1)(data).test) > 0
    with pytest.raises(InteractionsError, match="expected stratified"):
        parse_split("random", 1)


def test_fingerprint_is_the_content_not_the_row_order() -> None:
    rows = pa.table(
        {
            "user_id": ["u1", "u2", "u1", "u3"],
            "item_id": ["a", "a", "b", "c"],
            "weight": [1.0, 2.0, 3.0, 4.0],
            "timestamp": [10, 20, 30, 40],
        }
    )
    fingerprint = index_interactions(rows).fingerprint
    assert index_interactions(rows.take([3, 1, 2, 0])).fingerprint == fingerprint
    for column, values in (("weight", [1.0, 2.0, 3.0, 4.5]), ("timestamp", [10, 20, 30, 41])):
        changed = rows.set_column(rows.schema.get_field_index(column), column, pa.array(values))
        assert index_interactions(changed).fingerprint != fingerprint
    swapped = rows.set_column(1, "item_id", pa.array(["a", "a", "c", "b"]))
    assert index_interactions(swapped).fingerprint != fingerprint
