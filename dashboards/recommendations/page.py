"""Recommendations: how each model version's recommendations were listened to online, and its
offline evaluation against the popularity baseline (dbt exposure `recommendations_dashboard`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards import charts, filters
from dashboards.queries import query

SQL = Path(__file__).parent

# column -> panel name of the per-version rates
ONLINE_RATES = {
    "recommended_play_share": "share of all plays",
    "play_through_rate": "played through",
    "skip_rate": "skipped",
}
COVERAGE_RATES = {"catalog_coverage": "catalog coverage", "user_coverage": "user coverage"}
MODEL_COLUMNS = {  # column -> table heading of the models table
    "model_version": "model version",
    "model_status": "status",
    "model_engine": "engine",
    "trained_at": "trained",
    "first_served_date": "first served",
    "last_served_date": "last served",
    "recommended_plays": "recommended plays",
    "recommendations": "recommendations stored",
}


def render() -> None:
    st.title("Recommendations")
    start, end = filters.date_range(
        query(SQL / "date_bounds.sql"), "marts.mart_recommendation_performance"
    )
    performance = query(SQL / "model_performance.sql", start=start, end=end)
    versions = filters.choose("Model versions", performance["model_version"])
    performance = performance[performance["model_version"].isin(versions)]
    if performance.empty:
        st.info(f"No model version was trained or served in this range. {charts.NO_DATA}")
    else:
        charts.table(performance[list(MODEL_COLUMNS)], column_config=MODEL_COLUMNS)

    # Full width: the panels of a chart sit side by side.
    st.header("Online")
    for title, rates in [
        ("Recommendation-context plays per model version", ONLINE_RATES),
        ("Coverage per model version", COVERAGE_RATES),
    ]:
        charts.panel(
            title,
            performance[["model_version", "model_status", *rates]],
            lambda rows, rates=rates: charts.small_multiples(
                _rates(rows, rates),
                facet="measure",
                value="rate",
                label="model_version",
                titles=("rate", "model version"),
                percent=True,
            ),
        )
    st.caption(
        "Share of all plays: plays started from a version's recommendations / all plays on the "
        "days it served. Played through: starts listened to at least 90% of the track. "
        "Coverage: tracks of the active catalog and active users its stored lists reach. "
        "A version the registry does not know is labelled 'seen only in events'."
    )

    st.header("Offline evaluation")
    evaluations = query(SQL / "model_evaluations.sql", versions=versions)
    # Lifts of the @K metrics only: a count such as `users` has no meaningful lift.
    rate_metrics = evaluations[evaluations["metric_name"].str.contains("@", regex=False)]
    charts.panel(
        "Offline metrics per model version",
        evaluations,
        lambda rows: charts.small_multiples(
            rows,
            facet="metric_name",
            value="metric_value",
            label="model_version",
            titles=("value", "model version"),
        ),
    )
    charts.panel(
        "Lift over the popularity baseline",
        rate_metrics,
        lambda rows: charts.small_multiples(
            rows,
            facet="metric_name",
            value="relative_lift",
            label="model_version",
            titles=("lift", "model version"),
            percent=True,
        ),
    )
    st.caption("Each metric on its own scale. Lift: the model's value / the baseline's - 1.")


def _rates(performance: pd.DataFrame, rates: dict[str, str]) -> pd.DataFrame:
    """Long form for small multiples: one row per model version and rate."""
    return performance.melt(
        id_vars="model_version", value_vars=list(rates), var_name="measure", value_name="rate"
    ).assign(measure=lambda rows: rows["measure"].map(rates))
