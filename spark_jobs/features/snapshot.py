"""The point-in-time rule every feature transform follows.

A snapshot as of day D sees exactly the events with `ts < cutoff`, where cutoff = D+1 00:00:00
UTC: all of day D, nothing after it. A window of N days is `cutoff - N days <= ts < cutoff`,
i.e. the UTC days D-N+1 .. D. The catalog (SCD2) is taken as of the last instant before the
cutoff (T = cutoff - 1 µs in the contract's rule `valid_from <= T and (valid_to is null or
valid_to > T)`), so a change made on D counts and one made at or after D+1 00:00 does not.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SCD2_COLUMNS = ("valid_from", "valid_to", "is_current")


def cutoff(as_of: dt.date) -> dt.datetime:
    """The first instant that a snapshot as of `as_of` must not see."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def window_start(as_of: dt.date, days: int) -> dt.datetime:
    return cutoff(as_of) - dt.timedelta(days=days)


def in_window(as_of: dt.date, days: int, *, ts: str = "ts") -> Column:
    """True for events inside the `days`-day window ending with day `as_of`."""
    return (F.col(ts) >= F.lit(window_start(as_of, days))) & (F.col(ts) < F.lit(cutoff(as_of)))


def events_for_snapshot(events: DataFrame, as_of: dt.date, lookback_days: int) -> DataFrame:
    """The events a snapshot may use: the `lookback_days` days ending with `as_of`.

    `event_date` (the partition column, the UTC date of `ts`) prunes the files read; `ts` is the
    exact guard.
    """
    first_day = as_of - dt.timedelta(days=lookback_days - 1)
    return events.where(
        F.col("event_date").between(F.lit(first_day), F.lit(as_of))
        & in_window(as_of, lookback_days)
    )


def catalog_as_of(scd2: DataFrame, as_of: dt.date) -> DataFrame:
    """The catalog rows valid at the end of day `as_of`, without the SCD2 bookkeeping columns."""
    end = F.lit(cutoff(as_of))
    valid = (F.col("valid_from") < end) & (F.col("valid_to").isNull() | (F.col("valid_to") >= end))
    return scd2.where(valid).drop(*SCD2_COLUMNS)


def days_before(as_of: dt.date, date_column: Column) -> Column:
    """Whole days from a date (or timestamp, by its UTC date) to `as_of`."""
    return F.datediff(F.lit(as_of), F.to_date(date_column)).cast("bigint")
