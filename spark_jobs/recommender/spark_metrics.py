"""metrics.py's ranking metrics at k as Spark aggregations: the same definitions (see the
docstring there), computed where the lists are, with only one row of averages collected.

Inputs are long DataFrames: `ranked` (user, rank 1..k, item) the lists, `users` (user,
n_relevant > 0) every evaluated user, even one whose list is empty, `relevant` (user, item)
their test pairs, `percentiles` (item, percentile) of the candidate items.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def discount(rank: Column) -> Column:
    """1 / log2(rank + 1) of a 1-based rank (metrics.discounts at 0-based r: 1 / log2(r + 2))."""
    return 1.0 / F.log2(rank + 1)


def ideal_dcg(n_relevant: Column, k: int) -> Column:
    """The DCG of min(k, n_relevant) hits at the top."""
    ranks = F.sequence(F.lit(1), F.least(F.lit(k), n_relevant))
    return F.aggregate(ranks, F.lit(0.0), lambda total, rank: total + discount(rank))


def popularity_percentiles(popularity: DataFrame) -> DataFrame:
    """metrics.popularity_percentiles: (item, popularity) -> (item, percentile) in (0, 1], 1
    the most popular, ties at the mean rank of their group. The window runs over the distinct
    popularity values (at most the number of users), not over the items."""
    groups = popularity.groupBy("popularity").agg(F.count(F.lit(1)).alias("_size"))
    below = F.sum("_size").over(
        Window.orderBy("popularity").rowsBetween(Window.unboundedPreceding, -1)
    )
    n_items = F.sum("_size").over(Window.partitionBy(F.lit(0)))
    mean_rank = F.coalesce(below, F.lit(0)) + (F.col("_size") + 1) / 2.0
    percentiles = groups.select("popularity", (mean_rank / n_items).alias("percentile"))
    return popularity.join(percentiles, "popularity").select("item", "percentile")


def ranking_metrics(
    ranked: DataFrame,
    users: DataFrame,
    relevant: DataFrame,
    k: int,
    n_catalog: int,
    percentiles: DataFrame,
) -> dict[str, float]:
    """Every metric at k, averaged over `users` (each user counts once)."""
    hits = ranked.join(relevant.withColumn("hit", F.lit(1.0)), ["user", "item"], "left")
    hits = hits.fillna(0.0, ["hit"])
    hits_so_far = F.sum("hit").over(
        Window.partitionBy("user").orderBy("rank").rowsBetween(Window.unboundedPreceding, 0)
    )
    per_user = (
        hits.withColumn("_hits_so_far", hits_so_far)
        .groupBy("user")
        .agg(
            F.sum("hit").alias("hits"),
            F.sum(F.col("hit") * discount(F.col("rank"))).alias("dcg"),
            F.sum(F.col("hit") * F.col("_hits_so_far") / F.col("rank")).alias("ap"),
        )
    )
    scored = users.join(per_user, "user", "left").fillna(0.0, ["hits", "dcg", "ap"])
    n_relevant = F.col("n_relevant")
    averages = scored.agg(
        F.avg(F.col("hits") / k).alias(f"precision@{k}"),
        F.avg(F.col("hits") / n_relevant).alias(f"recall@{k}"),
        F.avg(F.col("dcg") / ideal_dcg(n_relevant, k)).alias(f"ndcg@{k}"),
        F.avg(F.col("ap") / F.least(F.lit(k), n_relevant)).alias(f"map@{k}"),
        F.avg((F.col("hits") > 0).cast("double")).alias(f"hit_rate@{k}"),
    ).first()
    lists = ranked.join(percentiles, "item", "left").agg(
        F.countDistinct("item").alias("distinct"), F.avg("percentile").alias("popularity")
    )
    distinct, popularity = lists.first()
    return {
        **{name: float(value) for name, value in averages.asDict().items()},
        f"coverage@{k}": distinct / n_catalog,
        f"popularity@{k}": float("nan") if popularity is None else float(popularity),
    }
