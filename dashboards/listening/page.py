"""Listening overview: daily KPIs, top tracks and artists, genre trends, weekly retention cohorts
and playlist engagement (dbt exposure `listening_dashboard`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import charts
from dashboards.queries import query, require_rows

SQL = Path(__file__).parent
TOP_N = 10


def render() -> None:
    st.title("Listening overview")
    kpis = require_rows(query(SQL / "daily_kpis.sql"), "marts.mart_daily_kpis")
    _kpi_tiles(kpis)
    _kpi_charts(kpis)
    _top_of_the_day(kpis)

    st.header("Genre trends")
    charts.plot(
        query(SQL / "genre_trends.sql"),
        "marts.mart_genre_trends",
        lambda rows: charts.per_category(
            _by_total(rows, "genre", "plays"),
            x="event_date",
            y="plays",
            category="genre",
            title="Plays per genre",
            labels={"plays": "plays", "genre": "genre", "event_date": "day"},
            stacked=True,
        ),
    )

    st.header("Retention")
    charts.plot(
        query(SQL / "retention_cohorts.sql"), "marts.mart_retention_cohorts", _retention_heatmap
    )
    st.caption(
        "Share of each weekly signup cohort (ISO weeks) active in each week since signup. "
        "* marks weeks the event history covers only in part."
    )

    st.header("Playlists")
    charts.plot(
        query(SQL / "playlist_engagement.sql", top_n=TOP_N),
        "marts.mart_playlist_engagement",
        lambda rows: charts.ranking(
            rows,
            label="playlist",
            value="plays",
            title=f"Top {TOP_N} playlists by plays",
            labels={"plays": "plays started from the playlist", "playlist": "playlist"},
            hover={
                "listeners": True,
                "skip_rate": ":.1%",
                "tracks_added": True,
                "track_count": True,
            },
        ),
    )


def _kpi_tiles(kpis: pd.DataFrame) -> None:
    latest = kpis.iloc[-1]
    previous = kpis.iloc[-2] if len(kpis) > 1 else None
    st.subheader(f"{latest['kpi_date']:%A %d %B %Y}")
    tiles = [  # label, column, Streamlit number format, decimals shown
        ("DAU", "daily_active_users", "localized", 0),
        ("WAU", "weekly_active_users", "localized", 0),
        ("MAU", "monthly_active_users", "localized", 0),
        ("Listening hours", "listening_hours", "localized", 1),
        ("Skip rate", "skip_rate", "percent", 4),
        ("New users", "new_users", "localized", 0),
    ]
    for slot, (label, column, number_format, decimals) in zip(
        st.columns(len(tiles)), tiles, strict=True
    ):
        value = round(float(latest[column]), decimals) if pd.notna(latest[column]) else None
        delta = None
        if previous is not None and value is not None and pd.notna(previous[column]):
            delta = round(value - float(previous[column]), decimals)
        slot.metric(
            label,
            value,
            delta,
            # A rising skip rate is bad news: colour it red.
            delta_color="inverse" if column == "skip_rate" else "normal",
            format=number_format,
            delta_description="vs. the day before" if delta is not None else None,
        )
    if not kpis["has_full_mau_window"].all():
        full_windows = kpis.loc[kpis["has_full_mau_window"], "kpi_date"]
        st.caption(
            f"The event history starts on {kpis['kpi_date'].iloc[0]:%d %B %Y}: WAU and MAU "
            + (
                f"count full 7- and 30-day windows from {full_windows.iloc[0]:%d %B %Y} on."
                if len(full_windows)
                else "undercount until 30 days of history are in."
            )
        )


def _kpi_charts(kpis: pd.DataFrame) -> None:
    # title, columns (column -> legend name), options of charts.time_series
    kpi_charts: list[tuple[str, dict[str, str], dict[str, bool]]] = [
        (
            "Active users",
            {
                "daily_active_users": "DAU",
                "weekly_active_users": "WAU",
                "monthly_active_users": "MAU",
            },
            {},
        ),
        ("Listening hours", {"listening_hours": "hours"}, {"bars": True}),
        ("Skip rate", {"skip_rate": "skip rate"}, {"percent": True}),
        ("New users", {"new_users": "new users"}, {"bars": True}),
    ]
    for slot, (title, series, options) in zip(st.columns(2) * 2, kpi_charts, strict=True):
        with slot:
            charts.show(
                charts.time_series(kpis, x="kpi_date", series=series, title=title, **options)
            )


def _top_of_the_day(kpis: pd.DataFrame) -> None:
    st.header("Top tracks and artists")
    day_picker, _ = st.columns([1, 3])
    day = day_picker.date_input(
        "Day",
        value=kpis["kpi_date"].iloc[-1],
        min_value=kpis["kpi_date"].iloc[0],
        max_value=kpis["kpi_date"].iloc[-1],
    )
    left, right = st.columns(2)
    with left:
        charts.plot(
            query(SQL / "top_tracks.sql", day=day, top_n=TOP_N),
            "marts.mart_top_tracks_daily",
            lambda rows: charts.ranking(
                rows.assign(track=rows["title"] + " · " + rows["artist_name"]),
                label="track",
                value="plays",
                title=f"Top {TOP_N} tracks on {day:%d %b %Y}",
                labels={"plays": "plays", "track": "track"},
                hover={"genre": True, "listeners": True, "skip_rate": ":.1%"},
            ),
        )
    with right:
        charts.plot(
            query(SQL / "top_artists.sql", day=day, top_n=TOP_N),
            "marts.fct_listening_events",
            lambda rows: charts.ranking(
                rows,
                label="artist_name",
                value="plays",
                title=f"Top {TOP_N} artists on {day:%d %b %Y}",
                labels={"plays": "plays", "artist_name": "artist"},
                hover={"listeners": True, "tracks_played": True},
            ),
        )


def _by_total(rows: pd.DataFrame, category: str, value: str) -> pd.DataFrame:
    """The rows with the biggest categories first, so the legend reads from the top down."""
    order = rows.groupby(category)[value].sum().sort_values(ascending=False).index
    ranks = {name: rank for rank, name in enumerate(order)}
    return rows.sort_values(by=category, key=lambda names: names.map(ranks), kind="stable")


def _retention_heatmap(cohorts: pd.DataFrame) -> go.Figure:
    cohorts = cohorts.assign(
        cohort=cohorts["cohort_week"].map("{:%d %b %Y}".format)
        + " (n="
        + cohorts["cohort_size"].astype(str)
        + ")",
        label=cohorts["retention_rate"].map("{:.0%}".format)
        + cohorts["is_complete_week"].map({True: "", False: "*"}),
    )
    rates = cohorts.pivot(index="cohort", columns="weeks_since_signup", values="retention_rate")
    labels = cohorts.pivot(index="cohort", columns="weeks_since_signup", values="label")
    order = cohorts.drop_duplicates("cohort").sort_values("cohort_week")["cohort"]
    rates, labels = rates.loc[order], labels.loc[order]
    figure = go.Figure(
        go.Heatmap(
            z=rates.to_numpy(),
            x=[f"week {weeks}" for weeks in rates.columns],
            y=list(rates.index),
            text=labels.fillna("").to_numpy(),
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "retained", "tickformat": ".0%"},
            hovertemplate="cohort %{y}<br>%{x}: %{z:.1%} active<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", title="signup week")
    figure.update_xaxes(side="top", title=None)
    figure.update_layout(
        title={"text": "Weekly retention by signup cohort"},
        height=max(300, 120 + 36 * len(rates)),
    )
    return figure
