"""The few chart shapes the dashboards use, styled alike (axis titles on both axes, horizontal
labels, the legend beside the plot), and `panel`, which every page draws its charts through: the
chart, the rows behind it as a table and a CSV download, or a no-data message."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

# No Plotly logo or cloud links in the chart toolbar: the dashboards stay on this network.
PLOTLY_CONFIG = {"displaylogo": False}
PERCENT = ".1%"
NO_DATA = "No data for this range."
# At most twice the page area of a small laptop window (~500 px): no chart needs long scrolls.
MAX_HEIGHT_PX = 1_000
DEFAULT_HEIGHT_PX = 450
FACET_COLUMNS = 4
MISSING = "—"  # what tables show for a null: never "None" or "nan"

Chart = Callable[[pd.DataFrame], go.Figure]


def panel(title: str, rows: pd.DataFrame, chart: Chart) -> None:
    """The chart `chart(rows)` titled `title`, with `rows` behind it (a table and a CSV
    download); the no-data message instead of empty axes when there are no rows."""
    if rows.empty:
        st.info(f"{title}: {NO_DATA}")
        return
    figure = chart(rows)
    figure.update_layout(
        title={"text": title},
        height=min(figure.layout.height or DEFAULT_HEIGHT_PX, MAX_HEIGHT_PX),
    )
    st.plotly_chart(figure, config=PLOTLY_CONFIG, key=f"chart {title}")
    with st.expander("Table and CSV"):
        table(rows)
        st.download_button(
            "Download CSV",
            rows.to_csv(index=False),  # nulls are empty fields
            file_name=f"{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}.csv",
            mime="text/csv",
            key=f"csv {title}",
            on_click="ignore",  # a download needs no rerun of the page
        )


def table(rows: pd.DataFrame, **options: object) -> None:
    """`rows` as a sortable table. The table draws a null as "None" whatever its display value,
    so the columns with nulls are shown as text, with a dash for each null."""
    with_nulls = rows.columns[rows.isna().any()]
    shown = rows.assign(**{column: rows[column].map(_text) for column in with_nulls})
    st.dataframe(shown, hide_index=True, **options)


def _text(value: object) -> str:
    return MISSING if pd.isna(value) else str(value)


def style(figure: go.Figure, *, percent: bool = False) -> go.Figure:
    figure.update_layout(
        # Beside the plot, not above it: a long legend never covers the title.
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
        legend_title_text=None,
        margin={"t": 80, "b": 40},
    )
    figure.update_xaxes(tickangle=0)
    figure.update_yaxes(tickangle=0)
    if percent:
        # "~" drops trailing zeros: small rates read 0.25%, large ones 60%.
        figure.update_yaxes(tickformat=".2~%", hoverformat=PERCENT, rangemode="tozero")
    return figure


def daily_axis(figure: go.Figure, days: pd.Series) -> None:
    # Ticks on whole days: a few days' range would otherwise get repeated half-day ticks.
    spacing_days = max(1, len(days.unique()) // 10)
    figure.update_xaxes(tickformat="%b %d", dtick=spacing_days * 86_400_000)


def time_series(
    rows: pd.DataFrame,
    *,
    x: str,
    series: Mapping[str, str],
    titles: tuple[str, str],
    bars: bool = False,
    percent: bool = False,
) -> go.Figure:
    """One trace per column of `series` (column -> legend name) over the day column `x`;
    `titles`: the x and y axis titles."""
    figure = go.Figure()
    for column, name in series.items():
        if bars:
            figure.add_bar(x=rows[x], y=rows[column], name=name)
        else:
            figure.add_scatter(x=rows[x], y=rows[column], name=name, mode="lines+markers")
    figure.update_layout(hovermode="x unified", showlegend=len(series) > 1, xaxis_title=titles[0])
    figure.update_yaxes(title=titles[1])
    daily_axis(figure, rows[x])
    return style(figure, percent=percent)


def stacked_series(
    rows: pd.DataFrame, *, x: str, series: Mapping[str, str], x_title: str
) -> go.Figure:
    """One panel per column of `series` (column -> name, the panel's y title) over the day column
    `x`, on a shared day axis: each on its own scale, so none hides behind another."""
    figure = make_subplots(rows=len(series), cols=1, shared_xaxes=True, vertical_spacing=0.1)
    for row, (column, name) in enumerate(series.items(), start=1):
        figure.add_scatter(
            x=rows[x], y=rows[column], name=name, mode="lines+markers", row=row, col=1
        )
        figure.update_yaxes(title=name, rangemode="tozero", row=row, col=1)
    figure.update_xaxes(title=x_title, row=len(series), col=1)
    figure.update_layout(hovermode="x unified", showlegend=False, height=120 + 130 * len(series))
    daily_axis(figure, rows[x])
    return style(figure)


def per_category(
    rows: pd.DataFrame,
    *,
    x: str,
    y: str,
    category: str,
    labels: Mapping[str, str],
    stacked: bool = False,
    percent: bool = False,
) -> go.Figure:
    """One trace per value of `category` over the day column `x` (stacked areas or lines);
    `labels` names the columns, the axes' titles among them."""
    draw = px.area if stacked else px.line
    figure = draw(rows, x=x, y=y, color=category, labels=dict(labels), markers=not stacked)
    figure.update_layout(hovermode="x unified")
    daily_axis(figure, rows[x])
    return style(figure, percent=percent)


def ranking(
    rows: pd.DataFrame,
    *,
    label: str,
    value: str,
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
        categoryorder="array", categoryarray=list(rows[label]), autorange="reversed"
    )
    figure.update_layout(height=max(300, 120 + 32 * len(rows)))
    return style(figure)


def small_multiples(
    rows: pd.DataFrame,
    *,
    facet: str,
    value: str,
    label: str,
    titles: tuple[str, str],
    percent: bool = False,
) -> go.Figure:
    """Horizontal bars of `value` per `label`, one panel per value of `facet` (in the rows'
    order), each on its own scale: a count beside rates, or a 900% lift beside a 20% one, all
    stay readable. `titles`: the value and label axis titles."""
    facets = list(dict.fromkeys(rows[facet]))
    labels = list(dict.fromkeys(rows[label]))
    columns = min(FACET_COLUMNS, len(facets))
    panel_rows = math.ceil(len(facets) / columns)
    figure = make_subplots(
        rows=panel_rows,
        cols=columns,
        subplot_titles=facets,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        vertical_spacing=min(0.3, 0.6 / panel_rows),
    )
    for n, name in enumerate(facets):
        part = rows[rows[facet] == name]
        figure.add_bar(
            x=part[value],
            y=part[label],
            name=name,
            orientation="h",
            row=n // columns + 1,
            col=n % columns + 1,
            hovertemplate=f"%{{y}}: %{{x:{PERCENT if percent else '.4~f'}}}<extra>{name}</extra>",
        )
    figure.update_yaxes(categoryorder="array", categoryarray=labels, autorange="reversed")
    figure.update_yaxes(title=titles[1], col=1)
    figure.update_xaxes(title=titles[0], rangemode="tozero", nticks=3)
    if percent:
        figure.update_xaxes(tickformat=".0%")
    figure.update_layout(showlegend=False, height=100 + panel_rows * (60 + 26 * len(labels)))
    return style(figure)
