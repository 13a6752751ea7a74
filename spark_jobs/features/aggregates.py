"""Small aggregate expressions shared by the feature transforms."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from feature_store.definitions import WINDOWS_DAYS


def is_type(event_type: str) -> Column:
    return F.col("event_type") == event_type


def count_if(condition: Column) -> Column:
    return F.count(F.when(condition, True))


def sum_if(condition: Column, value: Column) -> Column:
    return F.coalesce(F.sum(F.when(condition, value)), F.lit(0))


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator, null when the denominator is 0 (no evidence, not a 0% rate)."""
    return F.when(denominator > 0, numerator / denominator)


def skip_rates() -> dict[str, Column]:
    """`skip_rate_<days>d` = skips / (plays + skips) of every window, from the windowed counts."""
    return {
        f"skip_rate_{days}d": ratio(
            F.col(f"skips_{days}d"), F.col(f"plays_{days}d") + F.col(f"skips_{days}d")
        )
        for days in WINDOWS_DAYS
    }


def category_counts(rows: DataFrame, key: str, category: str) -> DataFrame:
    """Per `key`: `counts` (category -> rows, a map sorted by category), `total` (rows with a
    category) and `top` (struct of `neg_count` and `category`: the most frequent category, ties
    broken by the smallest category)."""
    per_category = (
        rows.where(F.col(category).isNotNull()).groupBy(key, category).agg(F.count("*").alias("n"))
    )
    return per_category.groupBy(key).agg(
        F.map_from_entries(F.sort_array(F.collect_list(F.struct(category, "n")))).alias("counts"),
        F.sum("n").alias("total"),
        # Sorting (-count, category) ascending puts the most frequent, then smallest, first.
        F.sort_array(
            F.collect_list(
                F.struct((-F.col("n")).alias("neg_count"), F.col(category).alias("category"))
            )
        )[0].alias("top"),
    )
