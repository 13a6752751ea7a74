"""The declarations: complete, consistent, and the README's tables generated from them."""

from __future__ import annotations

import pytest

from audotics.lake import tables
from feature_store.definitions import (
    ALS_RECOMMENDER,
    AUDIO_FEATURES,
    FEATURE_VIEWS,
    INTERACTIONS,
    TRACK_FEATURES,
    WINDOWS_DAYS,
)
from feature_store.docs import markdown
from feature_store.model import AS_OF_COLUMN, Feature, FeatureStoreError, FeatureView, resolve_refs
from tests.support import REPO

README = REPO / "feature_store" / "README.md"


def test_readme_tables_are_generated_from_the_definitions():
    assert markdown() in README.read_text(), "run `audotics features docs` into the README"


def test_every_feature_is_documented_and_windowed_ones_cover_every_window():
    for view in FEATURE_VIEWS.values():
        assert view.owner and view.source_job and view.description and view.ttl
        for feature in view.features:
            assert feature.description.endswith("."), feature.name
        if view.online:  # the served profiles; interactions count over the lookback
            for days in WINDOWS_DAYS:
                assert f"plays_{days}d" in view.feature_names


def columns(schema) -> list[tuple[str, object]]:
    return [(f.name, f.type) for f in schema]


def test_every_view_is_a_features_table_of_the_catalog():
    for view in FEATURE_VIEWS.values():
        assert view.table == tables.by_path(f"features/{view.name}")
        # One row per entity key and snapshot date, one partition per snapshot date.
        assert set(view.table.keys) == {*view.join_keys, AS_OF_COLUMN}
        assert view.table.partition_by == (AS_OF_COLUMN,)
        assert {*view.table.keys, *view.table.partition_by} <= set(view.arrow_schema().names)


def test_catalog_tables_without_a_schema_are_declared_by_exactly_one_view():
    undeclared = [table for table in tables.TABLES if table.schema is None]
    assert undeclared  # the catalog leaves user_features and track_features to their views
    for table in undeclared:
        [view] = [view for view in FEATURE_VIEWS.values() if view.table == table]
        schema = view.arrow_schema()
        assert [c for c in schema.names if c in table.keys] == list(table.keys)
        assert [c for c in schema.names if c in table.partition_by] == list(table.partition_by)


def test_the_interactions_view_declares_the_catalog_schema():
    # The catalog is the schema authority of features/interactions; the view must agree with
    # it, column by column (nullability is Spark's inference on write, not a contract).
    assert columns(INTERACTIONS.arrow_schema()) == columns(tables.INTERACTIONS.schema)
    assert not INTERACTIONS.online  # a training input: never materialized to Redis


def test_the_recommender_service_reads_interactions_and_audio_features():
    reads = {p.view.name: p.features for p in ALS_RECOMMENDER.projections}
    assert reads == {"interactions": ("confidence", "last_ts"), "track_features": AUDIO_FEATURES}
    assert ALS_RECOMMENDER.projection(TRACK_FEATURES).features == AUDIO_FEATURES
    with pytest.raises(FeatureStoreError, match="reads nothing of view user_features"):
        ALS_RECOMMENDER.projection(FEATURE_VIEWS["user_features"])
    with pytest.raises(FeatureStoreError, match="has no feature 'nope'"):
        TRACK_FEATURES.select("nope")


def test_references_resolve_or_say_why_not():
    [ref] = resolve_refs(FEATURE_VIEWS, ["top_genre_90d"], single_entity=True)
    assert (ref.view.name, ref.feature.name, ref.requested_name) == (
        "user_features",
        "top_genre_90d",
        "top_genre_90d",
    )
    mixed = resolve_refs(FEATURE_VIEWS, ["country", "genre"], single_entity=False)
    assert [r.view.name for r in mixed] == ["user_features", "track_features"]
    with pytest.raises(FeatureStoreError, match="unknown feature view 'nope'"):
        resolve_refs(FEATURE_VIEWS, ["nope:plays_7d"], single_entity=True)
    with pytest.raises(FeatureStoreError, match="unknown feature 'tempo_7d'"):
        resolve_refs(FEATURE_VIEWS, ["tempo_7d"], single_entity=True)
    with pytest.raises(FeatureStoreError, match="no feature names"):
        resolve_refs(FEATURE_VIEWS, [], single_entity=True)


def test_a_view_refuses_duplicate_features_and_online_pairs():
    view = FEATURE_VIEWS["user_features"]
    twice = (*view.features, Feature("country", view.features[0].dtype, "Again."))
    with pytest.raises(FeatureStoreError, match=r"declares \['country'\] twice"):
        FeatureView(**{**view.__dict__, "features": twice})
    with pytest.raises(FeatureStoreError, match="an online view describes exactly one entity"):
        FeatureView(**{**INTERACTIONS.__dict__, "online": True})
    with pytest.raises(FeatureStoreError, match=r"describes \['user', 'track'\], not one"):
        INTERACTIONS.entity  # noqa: B018 - the property raises
