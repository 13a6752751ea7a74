"""The sidebar's filters, alike on every page: the date range each page passes to its SQL as the
bind parameters :start and :end, and choices among a mart's values (model versions, reasons)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
import streamlit as st

from dashboards.queries import require_rows

DEFAULT_DAYS = 90  # years of history load fast, but a quarter is what a reader looks at first


def date_range(bounds: pd.DataFrame, source: str) -> tuple[dt.date, dt.date]:
    """The days the reader picks in the sidebar, by default the last DEFAULT_DAYS with data.
    `bounds`: a query's one row of `first_day` and `last_day` in `source`, the page's main mart
    (both null when it is empty: then `WarehouseNotReady`). Any range may be picked: one
    without data gets the no-data message, not a narrowed picker."""
    first, last = require_rows(bounds.dropna(), source).iloc[0][["first_day", "last_day"]]
    picked = st.sidebar.date_input(
        "Date range",
        value=(max(first, last - dt.timedelta(days=DEFAULT_DAYS - 1)), last),
        format="YYYY-MM-DD",
    )
    st.sidebar.caption(f"{source} has data from {first:%d %b %Y} to {last:%d %b %Y}.")
    if len(picked) < 2:  # the first day is picked, the last not yet
        st.sidebar.info("Pick the last day of the range.")
        st.stop()
    return picked


def choose(label: str, options: Iterable[str]) -> list[str]:
    """The options the reader picks in the sidebar; all of them while none is picked."""
    options = list(dict.fromkeys(options))
    return st.sidebar.multiselect(label, options, placeholder="All") or options
