"""The declarations: complete, consistent, and the README's tables generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from feature_store.definitions import FEATURE_VIEWS, WINDOWS_DAYS
from feature_store.docs import markdown
from feature_store.model import Feature, FeatureStoreError, FeatureView, resolve_refs

README = Path(__file__).resolve().parents[1] / "feature_store" / "README.md"


def test_readme_tables_are_generated_from_the_definitions():
    assert markdown() in README.read_text(), "run `audotics features docs` into the README"


def test_every_feature_is_documented_and_windowed_ones_cover_every_window():
    for view in FEATURE_VIEWS.values():
        assert view.owner and view.source_job and view.description and view.ttl
        for feature in view.features:
            assert feature.description.endswith("."), feature.name
        for days in WINDOWS_DAYS:
            assert f"plays_{days}d" in view.feature_names


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


def test_a_view_refuses_duplicate_features():
    view = FEATURE_VIEWS["user_features"]
    twice = (*view.features, Feature("country", view.features[0].dtype, "Again."))
    with pytest.raises(FeatureStoreError, match=r"declares \['country'\] twice"):
        FeatureView(**{**view.__dict__, "features": twice})
