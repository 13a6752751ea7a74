"""The table catalog (`audotics.lake.tables`): every declaration is consistent with its schema."""

from __future__ import annotations

import pytest

from audotics.lake import tables
from audotics.lake.tables import Table
from feature_store.definitions import FEATURE_VIEWS
from orchestration.contracts import table_schema

# Public contract: readers, Assets and the warehouse name the tables by these paths.
PATHS = [
    "bronze/events",
    "quarantine/events",
    "silver/events",
    "silver/users",
    "silver/artists",
    "silver/tracks",
    "silver/playlists",
    "silver/playlist_tracks",
    "ops/ingest_runs",
    "features/user_features",
    "features/track_features",
    "features/interactions",
    "models/registry",
    "models/experiments",
    "models/experiment_decisions",
    "models/user_factors",
    "models/item_factors",
    "gold/recommendations",
    "gold/similar_tracks",
    "ops/gdpr_requests",
]


def test_the_paths_are_the_public_ones_and_unique() -> None:
    paths = [table.path for table in tables.TABLES]
    assert paths == PATHS
    assert len(set(paths)) == len(paths)
    assert all(str(table) == table.path for table in tables.TABLES)


@pytest.mark.parametrize("table", tables.TABLES, ids=str)
def test_declared_columns_exist_in_the_schema(table: Table) -> None:
    columns = table_schema(table).names
    assert len(set(columns)) == len(columns)
    assert table.keys, "every table says what identifies a row"
    for kind, declared in [
        ("partition", table.partition_by),
        ("key", table.keys),
        ("user", table.user_columns),
        ("note", tuple(table.notes)),
    ]:
        missing = [c for c in declared if c not in columns]
        assert not missing, f"{table}: {kind} columns {missing} are not in its schema"
    if table.raw_lines:
        assert "raw" in columns


def test_only_feature_tables_leave_their_columns_to_a_feature_view() -> None:
    undeclared = [t for t in tables.TABLES if t.schema is None]
    assert [t.path for t in undeclared] == ["features/user_features", "features/track_features"]
    for table in undeclared:
        view = FEATURE_VIEWS[table.name]
        assert table.keys == (view.entity.join_key, "as_of_date")


def test_scd2_tables_are_the_silver_catalog_with_history_columns() -> None:
    assert {t.path for t in tables.SCD2_TABLES} == {
        "silver/users",
        "silver/artists",
        "silver/tracks",
        "silver/playlists",
        "silver/playlist_tracks",
    }
    for table in tables.SCD2_TABLES:
        assert {"valid_from", "valid_to", "is_current"} <= set(table_schema(table).names)
        assert not table.partition_by


def test_personal_data_is_declared_where_user_ids_live() -> None:
    """GDPR erasure trusts the catalog: a `user_id` column must be declared as personal data."""
    for table in tables.TABLES:
        if "user_id" in table_schema(table).names:
            assert "user_id" in table.user_columns, table.path
    assert {t.path for t in tables.TABLES if t.raw_lines} == {"bronze/events", "quarantine/events"}


def test_by_path_finds_a_table_or_names_the_known_paths() -> None:
    assert tables.by_path("silver/events") is tables.SILVER_EVENTS
    with pytest.raises(KeyError, match="no lake table 'silver/nope'") as error:
        tables.by_path("silver/nope")
    assert all(path in str(error.value) for path in PATHS)
