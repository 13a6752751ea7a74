"""Data quality: the share of landed event records that ingestion quarantined, per landing day
and reason (dbt exposure `data_quality_dashboard`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards import charts, filters
from dashboards.queries import query

SQL = Path(__file__).parent
TOP_REASONS = 5  # more lines than this tangle: the rest is summed as "other"


def render() -> None:
    st.title("Data quality")
    start, end = filters.date_range(query(SQL / "date_bounds.sql"), "marts.mart_data_quality")
    reasons = filters.choose(
        "Quarantine reasons", query(SQL / "reasons.sql", start=start, end=end)["reason"]
    )
    days = query(SQL / "quarantine_by_day.sql", start=start, end=end)
    _latest_day(days)

    charts.panel(
        "Quarantine rate per landing day",
        days,
        lambda rows: charts.time_series(
            rows,
            x="landing_date",
            series={"day_quarantine_rate": "quarantined"},
            titles=("landing day", "quarantined / input lines"),
            percent=True,
        ),
    )
    charts.panel(
        "Quarantine rate per reason",
        query(
            SQL / "quarantine_by_reason.sql",
            start=start,
            end=end,
            reasons=reasons,
            top_n=TOP_REASONS,
        ),
        lambda rows: charts.per_category(
            rows,
            x="landing_date",
            y="quarantine_rate",
            category="reason",
            labels={
                "quarantine_rate": "quarantined / input lines",
                "reason": "reason",
                "landing_date": "landing day",
            },
            percent=True,
        ),
    )
    st.caption(
        f"Rates are quarantined lines / lines in the day's landing files; the {TOP_REASONS} "
        "reasons with the most lines in the range are drawn, the others summed as 'other'. A "
        "line that breaks several rules counts under each reason, so the reasons can add up to "
        "more than the day."
    )


def _latest_day(days: pd.DataFrame) -> None:
    """Tiles of the range's latest landing day, and a warning for days without a good run."""
    if days.empty:  # the charts below say so too
        st.info(charts.NO_DATA)
        return
    latest = days.iloc[-1]
    st.subheader(f"Landing day {latest['landing_date']:%A %d %B %Y}")
    records, quarantined, rate, run = st.columns(4)
    # A day without an ingestion run has no input records nor rate: the tiles show a dash.
    records.metric("Input records", _or_none(latest["input_records"], "{:,.0f}"))
    quarantined.metric("Quarantined", _or_none(latest["day_quarantined_records"], "{:,.0f}"))
    rate.metric("Quarantine rate", _or_none(latest["day_quarantine_rate"], "{:.2%}"))
    run.metric("Ingestion run", _or_none(latest["run_status"], "{}") or "no run")

    failed = days[days["run_status"] != "success"]
    if not failed.empty:
        st.warning(
            "No successful ingestion run for "
            + ", ".join(f"{day:%d %b %Y}" for day in failed["landing_date"])
            + ": those days' counts may be incomplete."
        )


def _or_none(value: object, template: str) -> str | None:
    """`value` formatted, or None (a dash in a tile) when it is null."""
    return None if pd.isna(value) else template.format(value)
