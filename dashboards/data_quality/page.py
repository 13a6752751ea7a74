"""Data quality: the share of landed event records that ingestion quarantined, per landing day
and reason (dbt exposure `data_quality_dashboard`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards import charts
from dashboards.queries import query, require_rows

SQL = Path(__file__).parent


def render() -> None:
    st.title("Data quality")
    days = require_rows(query(SQL / "quarantine_by_day.sql"), "marts.mart_data_quality")
    latest = days.iloc[-1]
    st.subheader(f"Landing day {latest['landing_date']:%A %d %B %Y}")
    records, quarantined, rate, run = st.columns(4)
    records.metric("Input records", f"{latest['input_records']:,.0f}")
    quarantined.metric("Quarantined", f"{latest['day_quarantined_records']:,.0f}")
    rate.metric("Quarantine rate", f"{latest['day_quarantine_rate']:.2%}")
    run.metric("Ingestion run", str(latest["run_status"]))

    failed = days[days["run_status"] != "success"]
    if not failed.empty:
        st.warning(
            "No successful ingestion run for "
            + ", ".join(f"{day:%d %b %Y}" for day in failed["landing_date"])
            + ": those days' counts may be incomplete."
        )

    charts.show(
        charts.time_series(
            days,
            x="landing_date",
            series={"day_quarantine_rate": "quarantined"},
            title="Quarantine rate per landing day",
            percent=True,
        )
    )
    charts.plot(
        query(SQL / "quarantine_by_reason.sql"),
        "marts.mart_data_quality",
        lambda rows: charts.per_category(
            rows,
            x="landing_date",
            y="quarantine_rate",
            category="reason",
            title="Quarantine rate per reason",
            labels={"quarantine_rate": "rate", "reason": "reason", "landing_date": "landing day"},
            percent=True,
        ),
    )
    st.caption(
        "Rates are quarantined lines / lines in the day's landing files. A line that breaks "
        "several rules counts under each reason, so the reasons can add up to more than the day."
    )
