"""The Spark path against the numpy one: the same metrics, weights, evaluation protocol and
split semantics on small fixed examples, computed by real Spark jobs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from demo.synthetic import clustered_interactions
from spark_jobs.recommender import metrics, spark_data, spark_evaluation, spark_metrics
from spark_jobs.recommender.baseline import popularity_baseline
from spark_jobs.recommender.data import InteractionsError, index_interactions
from spark_jobs.recommender.engines import ALSParams
from spark_jobs.recommender.engines.spark_als import SparkALS
from spark_jobs.recommender.evaluation import evaluate, evaluate_with_baseline
from spark_jobs.recommender.ranking import factor_scorer
from spark_jobs.recommender.splits import Split, stratified_split
from spark_jobs.recommender.weighting import weighted


def test_spark_metrics_match_numpy(spark) -> None:
    # 4 users, k = 3; -1: no item at that rank (user 3's list is empty)
    recommended = np.array([[5, 2, 7], [1, 4, -1], [0, 3, 6], [-1, -1, -1]])
    relevant = {0: {2, 7, 9}, 1: {1}, 2: {8, 9, 10, 11}, 3: {4}}
    hits = np.array([[item in relevant[u] for item in row] for u, row in enumerate(recommended)])
    n_relevant = np.array([len(relevant[u]) for u in range(4)])
    counts = np.array([5.0, 3, 3, 1, 8, 2, 2, 2, 0.5, 7, 4, 6])
    percentiles = metrics.popularity_percentiles(counts)
    expected = metrics.ranking_metrics(hits, n_relevant, 3, recommended, 12, percentiles)

    ranked = spark.createDataFrame(
        [
            (u, r + 1, int(i))
            for u, row in enumerate(recommended)
            for r, i in enumerate(row)
            if i >= 0
        ],
        "user int, rank int, item int",
    )
    users = spark.createDataFrame(list(enumerate(n_relevant.tolist())), "user int, n_relevant long")
    pairs = spark.createDataFrame(
        [(u, i) for u, items in relevant.items() for i in items], "user int, item int"
    )
    popularity = spark.createDataFrame(
        list(enumerate(counts.tolist())), "item int, popularity double"
    )
    spark_percentiles = spark_metrics.popularity_percentiles(popularity)
    got = spark_metrics.ranking_metrics(ranked, users, pairs, 3, 12, spark_percentiles)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    by_item = dict(spark_percentiles.collect())
    assert [by_item[i] for i in range(12)] == pytest.approx(percentiles.tolist(), abs=1e-12)


def small_data(n_users: int = 40, n_items: int = 30, seed: int = 4):
    users, items, plays = clustered_interactions(n_users, n_items, 900, clusters=3, seed=seed)
    return index_interactions(
        pa.table(
            {
                "user_id": [f"u{u:03d}" for u in users],
                "item_id": [f"i{i:03d}" for i in items],
                "weight": plays.astype(np.float64),
                "timestamp": 1_700_000_000 + np.arange(len(users)) * 60,
            }
        )
    )


@pytest.mark.parametrize("weighting", ["none", "log", "bm25"])
def test_spark_weights_match_numpy(spark, weighting) -> None:
    data = small_data()
    frame = spark_data.from_interactions(spark, data)
    rows = spark_data.with_rating(frame.pairs, weighting, data.n_items).collect()
    got = np.zeros((data.n_users, data.n_items))
    for row in rows:
        got[row["user"], row["item"]] = row["rating"]
    expected = weighted(data.matrix(), weighting).toarray()
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_spark_evaluation_matches_numpy_on_the_same_split_and_factors(spark, tmp_path) -> None:
    data = small_data()
    split = stratified_split(data, 0.75, 42)
    spark_split = spark_data.SparkSplit(
        spark_data.from_interactions(spark, split.train),
        spark_data.from_interactions(spark, split.test),
    )
    engine = SparkALS(spark, str(tmp_path / "checkpoints"))
    model = engine.fit(spark_split.train, ALSParams(factors=4, iterations=5, seed=1))
    got = spark_evaluation.evaluate_with_baseline(model, spark_split, 5)

    # the same factors, collected here only to score them the numpy way
    def dense(frame, rows: int) -> np.ndarray:
        factors = np.zeros((rows, 4), np.float32)
        for row in frame.collect():
            factors[row["id"]] = row["features"]
        return factors

    scorer = factor_scorer(
        dense(model.user_factors, data.n_users), dense(model.item_factors, data.n_items)
    )
    expected = evaluate_with_baseline(scorer, split, 5)
    baseline_ties = np.unique(np.bincount(split.train.items), return_counts=True)[1].max() > 1
    for side in ("model", "baseline"):
        for name, value in expected[side].items():
            if side == "baseline" and baseline_ties and name not in ("users",):
                continue  # ties among equally popular items may be broken differently
            assert got[side][name] == pytest.approx(value, abs=1e-9), (side, name)
    assert got["model"]["ndcg@5"] > got["baseline"]["ndcg@5"]


def test_spark_baseline_matches_numpy_without_ties(spark) -> None:
    # item i is played by the first 2 * (i + 1) users: every popularity is distinct
    users, items = zip(*[(u, i) for i in range(8) for u in range(2 * (i + 1))], strict=True)
    data = index_interactions(
        pa.table(
            {
                "user_id": [f"u{u:02d}" for u in users],
                "item_id": [f"i{i}" for i in items],
                "weight": np.ones(len(users)),
            }
        )
    )
    test = np.asarray(items) % 3 == np.asarray(users) % 2  # a fixed test side, per user
    split = Split(data.subset(~test), data.subset(test))
    spark_split = spark_data.SparkSplit(
        spark_data.from_interactions(spark, split.train),
        spark_data.from_interactions(spark, split.test),
    )
    popularity = spark_split.train.pairs.groupBy("item").agg(F.count("*").alias("popularity"))
    got = spark_evaluation.evaluate(
        spark_evaluation.popularity_candidates(popularity), spark_split, 3
    )
    expected = evaluate(popularity_baseline(split.train), split, 3)
    assert got == pytest.approx(expected, abs=1e-9)


def test_spark_stratified_split_semantics(spark) -> None:
    data = spark_data.from_interactions(spark, small_data())
    split = spark_data.stratified_split(data, 0.75, 42)
    per_user = {
        row["user"]: (row["n"], row["test"])
        for row in data.pairs.groupBy("user")
        .agg(F.count("*").alias("n"))
        .join(split.test.pairs.groupBy("user").agg(F.count("*").alias("test")), "user", "left")
        .fillna(0)
        .collect()
    }
    for n, n_test in per_user.values():
        assert n_test == min(np.rint(0.25 * n), n - 1)
    train = {(r.user, r.item) for r in split.train.pairs.collect()}
    test = {(r.user, r.item) for r in split.test.pairs.collect()}
    assert not train & test and len(train | test) == data.size
    # the same pairs in another partitioning split the same way; another seed differently
    shuffled = replace(data, pairs=data.pairs.repartition(5))
    again = {
        (r.user, r.item)
        for r in spark_data.stratified_split(shuffled, 0.75, 42).test.pairs.collect()
    }
    other = {
        (r.user, r.item) for r in spark_data.stratified_split(data, 0.75, 7).test.pairs.collect()
    }
    assert again == test and other != test
    with pytest.raises(InteractionsError, match="not in"):
        spark_data.stratified_split(data, 1.0)


def test_spark_temporal_split(spark) -> None:
    data = spark_data.from_interactions(spark, small_data())
    end = data.pairs.agg(F.max("timestamp")).first()[0] + 1
    split = spark_data.last_days_split(data, 0.1)  # 2.4 hours: 144 events a minute apart
    assert split.test.pairs.agg(F.min("timestamp")).first()[0] >= end - 8_640
    assert split.train.pairs.agg(F.max("timestamp")).first()[0] < end - 8_640
    assert split.train.size + split.test.size == data.size
    with pytest.raises(InteractionsError, match="both sides need some"):
        spark_data.temporal_split(data, end)


def test_spark_reads_and_indexes_files(spark, tmp_path) -> None:
    movielens = tmp_path / "u.data"
    movielens.write_text("2\t10\t5\t881250949\n1\t20\t3\t891717742\n2\t10\t1\t891717743\n")
    data = spark_data.index_interactions(
        spark_data.read_interactions_file(spark, movielens, "movielens")
    )
    assert (data.n_users, data.n_items, data.size, data.has_timestamps) == (2, 2, 2, True)
    assert sorted(data.user_ids.collect()) == [("1", 0), ("2", 1)]  # sorted ids, dense
    pairs = {(r.user, r.item): (r.weight, r.timestamp) for r in data.pairs.collect()}
    assert pairs == {(1, 0): (6.0, 891717743), (0, 1): (3.0, 891717742)}  # repeats merged

    csv = tmp_path / "plays.csv"
    csv.write_text("user_id,item_id,timestamp\nu1,a,2026-11-01T10:00:00Z\nu2,b,1700000000\n")
    frame = spark_data.read_interactions_file(spark, csv, "csv")
    assert sorted(frame.collect()) == [
        ("u1", "a", 1.0, 1_793_527_200),
        ("u2", "b", 1.0, 1_700_000_000),
    ]
    csv.write_text("user_id,item_id,weight\nu1,a,1\nu2,b,lots\n")
    with pytest.raises(InteractionsError, match="weight 'lots' is not a number > 0"):
        spark_data.read_interactions_file(spark, csv, "csv")
