"""Recommendations: how each model version's recommendations were listened to online, and its
offline evaluation against the popularity baseline (dbt exposure `recommendations_dashboard`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards import charts
from dashboards.queries import query, require_rows

SQL = Path(__file__).parent

# column -> legend name of the per-version rates
ONLINE_RATES = {
    "recommended_play_share": "share of all plays",
    "play_through_rate": "played through",
    "skip_rate": "skipped",
}
COVERAGE_RATES = {"catalog_coverage": "catalog coverage", "user_coverage": "user coverage"}


def render() -> None:
    st.title("Recommendations")
    performance = require_rows(
        query(SQL / "model_performance.sql"), "marts.mart_recommendation_performance"
    )
    st.dataframe(
        performance[
            [
                "model_version",
                "model_status",
                "model_engine",
                "trained_at",
                "first_served_date",
                "last_served_date",
                "recommended_plays",
                "recommendations",
            ]
        ],
        hide_index=True,
        column_config={
            "model_version": "model version",
            "model_status": "status",
            "model_engine": "engine",
            "trained_at": st.column_config.DatetimeColumn("trained", format="YYYY-MM-DD HH:mm"),
            "first_served_date": "first served",
            "last_served_date": "last served",
            "recommended_plays": "recommended plays",
            "recommendations": "recommendations stored",
        },
    )

    st.header("Online")
    left, right = st.columns(2)
    with left:
        charts.show(
            charts.grouped_bars(
                _rates(performance, ONLINE_RATES),
                x="model_version",
                y="rate",
                group="measure",
                title="Recommendation-context plays per model version",
                labels={"model_version": "model version", "rate": "rate", "measure": ""},
                percent=True,
            )
        )
    with right:
        charts.show(
            charts.grouped_bars(
                _rates(performance, COVERAGE_RATES),
                x="model_version",
                y="rate",
                group="measure",
                title="Coverage per model version",
                labels={"model_version": "model version", "rate": "share", "measure": ""},
                percent=True,
            )
        )
    st.caption(
        "Share of all plays: plays started from a version's recommendations / all plays on the "
        "days it served. Played through: starts listened to at least 90% of the track. "
        "Coverage: tracks of the active catalog and active users its stored lists reach."
    )

    st.header("Offline evaluation")
    evaluations = query(SQL / "model_evaluations.sql")
    left, right = st.columns(2)
    with left:
        charts.plot(
            evaluations,
            "marts.mart_model_evaluations",
            lambda rows: charts.grouped_bars(
                rows,
                x="metric_name",
                y="metric_value",
                group="model_version",
                title="Offline metrics per model version",
                labels={"metric_name": "metric", "metric_value": "value", "model_version": ""},
                hover={"baseline_value": ":.4f", "model_status": True},
            ),
        )
    with right:
        charts.plot(
            evaluations,
            "marts.mart_model_evaluations",
            lambda rows: charts.grouped_bars(
                rows,
                x="metric_name",
                y="relative_lift",
                group="model_version",
                title="Lift over the popularity baseline",
                labels={"metric_name": "metric", "relative_lift": "lift", "model_version": ""},
                percent=True,
                hover={"metric_value": ":.4f", "baseline_value": ":.4f"},
            ),
        )


def _rates(performance: pd.DataFrame, rates: dict[str, str]) -> pd.DataFrame:
    """Long form for grouped bars: one row per model version and rate."""
    return performance.melt(
        id_vars="model_version", value_vars=list(rates), var_name="measure", value_name="rate"
    ).assign(measure=lambda rows: rows["measure"].map(rates))
