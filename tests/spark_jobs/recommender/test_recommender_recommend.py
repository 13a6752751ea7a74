"""Batch recommendations: seen items excluded, artist cap, new-track slots, fallback lists,
similar tracks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from spark_jobs.recommender.batch import ItemSpace, ListOptions, fallback_lists, model_lists
from spark_jobs.recommender.data import index_interactions
from spark_jobs.recommender.inputs import Tracks, Users
from spark_jobs.recommender.ranking import popularity_scorer
from spark_jobs.recommender.recommend import (
    artist_cap,
    similar_items,
    slot_new_tracks,
    slot_ranks,
    top_n,
)


def test_top_n_excludes_seen_items_and_caps_artists() -> None:
    # item i scores 10 - i; items 0..3 are artist 0, items 4..9 one artist each
    scorer = popularity_scorer(10.0 - np.arange(10))
    seen = sp.csr_matrix(([1.0], ([0], [1])), shape=(2, 10))  # user 0 has seen item 1
    artists = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
    ids, scores = top_n(
        scorer, np.array([0, 1]), 4, n_items=10, seen=seen, artists=artists, max_per_artist=2
    )
    assert ids.tolist() == [[0, 2, 4, 5], [0, 1, 4, 5]]
    assert scores[0].tolist() == [10.0, 8.0, 6.0, 5.0]


def test_top_n_ranks_deeper_for_lists_the_cap_left_short() -> None:
    # item i scores 1000 - i; artist 0 has the 90 best items, then one artist per item: N = 3
    # with one item per artist needs a depth of 92, beyond the first 4N = 12 and then 48.
    scorer = popularity_scorer(1000.0 - np.arange(1_000))
    artists = np.r_[np.zeros(90, dtype=np.int64), np.arange(1, 911)]
    ids, scores = top_n(scorer, np.arange(5), 3, n_items=1_000, artists=artists, max_per_artist=1)
    assert ids.tolist() == [[0, 90, 91]] * 5
    assert scores[0].tolist() == [1000.0, 910.0, 909.0]


def test_artist_cap_keeps_the_first_per_artist_in_rank_order() -> None:
    ranked = np.array([[3, 0, 1, 2, -1]])
    artists = np.array([7, 7, 8, 7])
    # artists of the ranked items: 7, 7, 7, 8, none
    assert artist_cap(ranked, artists, 1).tolist() == [[True, False, False, True, False]]


def test_new_tracks_take_evenly_spread_ranks() -> None:
    assert slot_ranks(10, 2).tolist() == [3, 6]
    ids = np.arange(10)[None, :]
    merged, scores = slot_new_tracks(
        ids, -ids.astype(float), np.array([[100, 101]]), np.array([[0.9, 0.8]])
    )
    assert merged.tolist() == [[0, 1, 2, 100, 3, 4, 101, 5, 6, 7]]
    assert scores[0, [3, 6]].tolist() == [0.9, 0.8]


def catalog() -> tuple[Tracks, Users]:
    """Tracks t0..t5 (t5 is new: nobody played it), two artists, two genres, audio features
    where t5 sounds like t0/t1. Users u0, u1 have history; u2 (FR) and u3 (DE) have none."""
    audio = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [0.95, 0.0]])
    tracks = Tracks(
        track_ids=np.array([f"t{i}" for i in range(6)], dtype=object),
        artist_ids=np.array(["a", "a", "a", "b", "b", "b"], dtype=object),
        genres=np.array(["rock", "rock", "jazz", "jazz", "jazz", "rock"], dtype=object),
        audio=audio,
    )
    users = Users(
        user_ids=np.array(["u0", "u1", "u2", "u3"], dtype=object),
        countries=np.array(["FR", "DE", "FR", "DE"], dtype=object),
        tastes=np.array(["", "", "jazz", ""], dtype=object),
    )
    return tracks, users


def history():
    pairs = [("u0", "t0"), ("u0", "t1"), ("u1", "t2"), ("u1", "t3"), ("u1", "t0"), ("u0", "t4")]
    return index_interactions(
        pa.table(
            {
                "user_id": [u for u, _ in pairs],
                "item_id": [t for _, t in pairs],
                "weight": [1.0] * len(pairs),
            }
        )
    )


def test_model_lists_exclude_history_and_slot_the_closest_new_track() -> None:
    tracks, _ = catalog()
    data = history()
    space = ItemSpace.build(data.item_ids, tracks)
    rng = np.random.default_rng(0)
    user_factors, item_factors = rng.random((data.n_users, 3)), rng.random((data.n_items, 3))
    options = ListOptions(n=4, exclude_seen=True, max_per_artist=0, new_track_slots=1)
    ids, _ = model_lists(data, user_factors, item_factors, space, options)
    for user in range(data.n_users):
        listed = {space.track_ids[i] for i in ids[user] if i >= 0}
        seen = set(data.item_ids[data.items[data.users == user]])
        assert not listed & seen
    u0 = list(data.user_ids).index("u0")
    assert "t5" in {space.track_ids[i] for i in ids[u0] if i >= 0}


def test_users_without_history_get_country_and_taste_fallback() -> None:
    tracks, users = catalog()
    data = history()
    space = ItemSpace.build(data.item_ids, tracks)
    options = ListOptions(n=3, max_per_artist=2)
    cold, ids, scores = fallback_lists(data, users, space, options)
    assert cold.tolist() == ["u2", "u3"]
    lists = {
        user: [space.track_ids[i] for i in row if i >= 0]
        for user, row in zip(cold, ids, strict=True)
    }
    # u2 (FR, likes jazz): FR played t0, t1, t4; jazz (t4, then t2/t3) is boosted
    assert lists["u2"][0] == "t4"
    # u3 (DE, no taste): DE (u1) played t0, t2, t3; t0 is also played in FR: first
    assert lists["u3"][0] == "t0"
    for row in lists.values():  # the new track t5 has no plays, so never a fallback
        assert "t5" not in row and len(row) == 3
    assert (np.diff(scores, axis=1) <= 0).all()


def test_similar_items_by_factor_cosine() -> None:
    factors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    items, similar, cosines = similar_items(factors, 2, np.array([True, True, True, False]))
    assert items.tolist() == [0, 1, 2]
    assert similar.tolist() == [[1, 2], [0, 2], [1, 0]]
    assert cosines[0, 0] > 0.99
