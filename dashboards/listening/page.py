"""Listening overview: daily KPIs, top tracks and artists, genre trends, weekly retention cohorts
and playlist engagement (dbt exposure `listening_dashboard`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import charts, filters
from dashboards.queries import query

SQL = Path(__file__).parent
TOP_N = 10
COHORTS = WEEKS = 12  # the retention triangle: the latest 12 cohorts by their first 12 weeks


def render() -> None:
    st.title("Listening overview")
    bounds = query(SQL / "date_bounds.sql")
    start, end = filters.date_range(bounds, "marts.mart_daily_kpis")
    kpis = query(SQL / "daily_kpis.sql", start=start, end=end)
    _kpi_tiles(kpis, first_day=bounds["first_day"].iloc[0])
    _kpi_charts(kpis)
    _top_of_the_day(start, end)

    st.header("Genre trends")
    charts.panel(
        "Plays per genre",
        query(SQL / "genre_trends.sql", start=start, end=end),
        lambda rows: charts.per_category(
            _by_total(rows, "genre", "plays"),
            x="event_date",
            y="plays",
            category="genre",
            labels={"plays": "plays", "genre": "genre", "event_date": "day"},
            stacked=True,
        ),
    )

    st.header("Retention")
    charts.panel(
        "Weekly retention by signup cohort",
        query(SQL / "retention_cohorts.sql", start=start, end=end, cohorts=COHORTS, weeks=WEEKS),
        _retention_heatmap,
    )
    st.caption(
        f"Share of each weekly signup cohort (ISO weeks) active in each week since signup: the "
        f"latest {COHORTS} cohorts of the range by their first {WEEKS} weeks. "
        "* marks weeks the event history covers only in part."
    )

    st.header("Playlists")
    charts.panel(
        f"Top {TOP_N} playlists by plays (all time)",
        query(SQL / "playlist_engagement.sql", top_n=TOP_N),
        lambda rows: charts.ranking(
            rows,
            label="playlist",
            value="plays",
            labels={"plays": "plays started from the playlist", "playlist": "playlist"},
            hover={
                "listeners": True,
                "skip_rate": ":.1%",
                "tracks_added": True,
                "track_count": True,
            },
        ),
    )
    st.caption("The playlist mart counts all plays ever: the date range does not apply here.")


def _kpi_tiles(kpis: pd.DataFrame, *, first_day: dt.date) -> None:
    if kpis.empty:  # each chart below says so too
        st.info(charts.NO_DATA)
        return
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
        # A day without plays has no skip rate: the tile shows a dash.
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
            f"The event history starts on {first_day:%d %B %Y}: WAU and MAU "
            + (
                f"count full 7- and 30-day windows from {full_windows.iloc[0]:%d %B %Y} on."
                if len(full_windows)
                else "undercount until 30 days of history are in."
            )
        )


def _kpi_charts(kpis: pd.DataFrame) -> None:
    # title, chart of the rows
    kpi_charts: list[tuple[str, charts.Chart]] = [
        (
            "Active users",
            lambda rows: charts.stacked_series(
                rows,
                x="kpi_date",
                series={
                    "daily_active_users": "DAU",
                    "weekly_active_users": "WAU",
                    "monthly_active_users": "MAU",
                },
                x_title="day",
            ),
        ),
        (
            "Listening hours",
            lambda rows: charts.time_series(
                rows,
                x="kpi_date",
                series={"listening_hours": "hours"},
                titles=("day", "hours"),
                bars=True,
            ),
        ),
        (
            "Skip rate",
            lambda rows: charts.time_series(
                rows,
                x="kpi_date",
                series={"skip_rate": "skip rate"},
                titles=("day", "skips / starts"),
                percent=True,
            ),
        ),
        (
            "New users",
            lambda rows: charts.time_series(
                rows,
                x="kpi_date",
                series={"new_users": "new users"},
                titles=("day", "signups"),
                bars=True,
            ),
        ),
    ]
    for slot, (title, chart) in zip(st.columns(2) * 2, kpi_charts, strict=True):
        with slot:
            charts.panel(title, kpis, chart)


def _top_of_the_day(start: dt.date, end: dt.date) -> None:
    st.header("Top tracks and artists")
    day_picker, _ = st.columns([1, 3])
    # One day of the range: the mart ranks tracks per day, and listeners do not add up over days.
    day = day_picker.date_input("Day", value=end, min_value=start, max_value=end)
    left, right = st.columns(2)
    with left:
        charts.panel(
            f"Top {TOP_N} tracks on {day:%d %b %Y}",
            query(SQL / "top_tracks.sql", day=day, top_n=TOP_N),
            lambda rows: charts.ranking(
                rows.assign(track=rows["title"] + " · " + rows["artist_name"]),
                label="track",
                value="plays",
                labels={"plays": "plays", "track": "track"},
                hover={"genre": True, "listeners": True, "skip_rate": ":.1%"},
            ),
        )
    with right:
        charts.panel(
            f"Top {TOP_N} artists on {day:%d %b %Y}",
            query(SQL / "top_artists.sql", day=day, top_n=TOP_N),
            lambda rows: charts.ranking(
                rows,
                label="artist_name",
                value="plays",
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
        label=cohorts["retention_rate"].map("{:.0%}".format, na_action="ignore")
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
            hoverongaps=False,  # the empty half of the triangle: weeks not lived yet
            hovertemplate="cohort %{y}<br>%{x}: %{z:.1%} active<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", title="signup week (cohort size)")
    figure.update_xaxes(title="weeks since signup", tickangle=0)
    figure.update_layout(height=max(320, 160 + 36 * len(rates)))  # 12 cohorts: 592 px
    return figure
