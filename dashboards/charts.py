"""The few chart shapes the dashboards use, styled alike: time series, series per category,
rankings and grouped bars. Each takes a query's rows and returns a Plotly figure."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

# No Plotly logo or cloud links in the chart toolbar: the dashboards stay on this network.
PLOTLY_CONFIG = {"displaylogo": False}
PERCENT = ".1%"


def plot(rows: pd.DataFrame, source: str, draw: Callable[[pd.DataFrame], go.Figure]) -> None:
    """Draw the rows, or say that `source` has none (yet) instead of showing empty axes."""
    if rows.empty:
        st.info(f"No rows in {source} yet.")
        return
    show(draw(rows))


def show(figure: go.Figure) -> None:
    st.plotly_chart(figure, config=PLOTLY_CONFIG)


def _style(figure: go.Figure, title: str, *, percent: bool = False) -> go.Figure:
    figure.update_layout(
        title={"text": title},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
        margin={"t": 80, "b": 40},
    )
    if percent:
        # "~" drops trailing zeros: small rates read 0.25%, large ones 60%.
        figure.update_yaxes(tickformat=".2~%", hoverformat=PERCENT, rangemode="tozero")
    return figure


def _daily_axis(figure: go.Figure, days: pd.Series) -> None:
    # Ticks on whole days: a few days' range would otherwise get repeated half-day ticks.
    spacing_days = max(1, len(days.unique()) // 12)
    figure.update_xaxes(title=None, tickformat="%b %d", dtick=spacing_days * 86_400_000)


def time_series(
    rows: pd.DataFrame,
    *,
    x: str,
    series: Mapping[str, str],
    title: str,
    bars: bool = False,
    percent: bool = False,
) -> go.Figure:
    """One trace per column of `series` (column -> legend name) over the day column `x`."""
    figure = go.Figure()
    for column, name in series.items():
        if bars:
            figure.add_bar(x=rows[x], y=rows[column], name=name)
        else:
            figure.add_scatter(x=rows[x], y=rows[column], name=name, mode="lines+markers")
    figure.update_layout(hovermode="x unified", showlegend=len(series) > 1)
    _daily_axis(figure, rows[x])
    return _style(figure, title, percent=percent)


def per_category(
    rows: pd.DataFrame,
    *,
    x: str,
    y: str,
    category: str,
    title: str,
    labels: Mapping[str, str],
    stacked: bool = False,
    percent: bool = False,
) -> go.Figure:
    """One trace per value of `category` over the day column `x` (stacked areas or lines)."""
    draw = px.area if stacked else px.line
    figure = draw(rows, x=x, y=y, color=category, labels=dict(labels), markers=not stacked)
    figure.update_layout(hovermode="x unified")
    _daily_axis(figure, rows[x])
    return _style(figure, title, percent=percent)


def ranking(
    rows: pd.DataFrame,
    *,
    label: str,
    value: str,
    title: str,
    labels: Mapping[str, str],
    hover: Mapping[str, str | bool] | None = None,
) -> go.Figure:
    """Horizontal bars in the rows' order, the first row on top."""
    figure = px.bar(
        rows,
        x=value,
        y=label,
        orientation="h",
        labels=dict(labels),
        hover_data=dict(hover or {}),
        text=value,
    )
    figure.update_yaxes(
        title=None, categoryorder="array", categoryarray=list(rows[label]), autorange="reversed"
    )
    figure.update_layout(height=max(300, 40 + 32 * len(rows)))
    return _style(figure, title)


def grouped_bars(
    rows: pd.DataFrame,
    *,
    x: str,
    y: str,
    group: str,
    title: str,
    labels: Mapping[str, str],
    percent: bool = False,
    hover: Mapping[str, str | bool] | None = None,
) -> go.Figure:
    """Bars of `y` per `x`, side by side for each value of `group` (long-form rows)."""
    figure = px.bar(
        rows,
        x=x,
        y=y,
        color=group,
        barmode="group",
        labels=dict(labels),
        hover_data=dict(hover or {}),
    )
    figure.update_xaxes(title=None, type="category")
    return _style(figure, title, percent=percent)
