"""Experiments: the A/B experiments between model versions, one at a time: its traffic split and
sample-ratio check, each challenger's lift over the control per metric, and the primary
metric's lift day by day (dbt exposure `experiments_dashboard`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from audotics.assignment import SRM_ALPHA
from dashboards import charts
from dashboards.queries import query

SQL = Path(__file__).parent
SOURCE = "marts.mart_experiment_results"
SRM_WARNING = "Sample ratio mismatch: results not trustworthy."
LIFT_FORMAT = ".1~%"  # ticks: 18%, 2.5%, -0.4%
LIFT_HOVER = ".1%"
ESTIMATES = {  # trace name -> the columns of its lift and 95% interval
    "CUPED": ("cuped_lift", "cuped_lift_ci_low", "cuped_lift_ci_high"),
    "raw (unadjusted)": ("lift", "lift_ci_low", "lift_ci_high"),
}
COLOURS = {"CUPED": "#0068c9", "raw (unadjusted)": "#83c9ff"}  # alike in every metric's panel
MAX_PANELS = 4  # metrics side by side; the mart measures 3


def render() -> None:
    st.title("Experiments")
    experiments = query(SQL / "experiments.sql")
    if experiments.empty:
        st.info(
            f"No experiment has results yet: {SOURCE} is empty. `audotics experiment start` "
            "splits the traffic between two published model versions; the next `make run` "
            "measures it, and its results show here."
        )
        return
    experiment = _pick(experiments)
    experiment_id, day = experiment["experiment_id"], experiment["last_result_date"]
    _summary(experiment)

    st.header(f"Traffic split on {day:%d %b %Y}")
    arms = query(SQL / "arms.sql", experiment_id=experiment_id, day=day)
    _sample_ratio(arms)
    charts.panel("Exposed users per arm vs the planned split", arms, _split_chart)
    st.caption(
        "Users exposed to each arm from the start through the day, as a share of all exposed "
        "users, beside the share the arm was planned to get. The SRM p-value tests the split "
        f"(chi-square); below {SRM_ALPHA} the assignment is broken."
    )

    st.header(f"Lift over the control on {day:%d %b %Y}")
    charts.panel(
        "Lift per metric, each challenger vs the control",
        query(SQL / "lifts.sql", experiment_id=experiment_id, day=day),
        _lift_chart,
    )
    st.caption(
        "Relative difference of each challenger's mean per exposed user from the control's, "
        "with its 95% interval, on the results from the start through the day; one panel per "
        "metric, each on its own scale, the primary metric first, then the guardrails. CUPED "
        "regresses each user's pre-experiment listening out, which narrows the interval; the "
        "raw interval is drawn beside it. An interval that does not cross 0 is significant at "
        "5%. For the skip rate, lower is better."
    )

    st.header("Primary metric over time")
    charts.panel(
        "Primary metric: CUPED lift per result day",
        query(SQL / "primary_lift_by_day.sql", experiment_id=experiment_id),
        _lift_by_day_chart,
    )
    st.caption(
        "Each day's point is the CUPED lift with its 95% interval on all results from the "
        "start through that day (cumulative), so the interval narrows as users come in."
    )


def _pick(experiments: pd.DataFrame) -> pd.Series:
    """The experiment the reader picks in the sidebar, the newest by default."""
    by_id = experiments.set_index("experiment_id", drop=False)
    picked = st.sidebar.selectbox("Experiment", list(by_id.index))
    count = len(experiments)
    st.sidebar.caption(
        f"{SOURCE} has results of {count} experiment{'s' if count > 1 else ''}, newest first."
    )
    return by_id.loc[picked]


def _summary(experiment: pd.Series) -> None:
    """The experiment's registry facts, on one line: ids and metric names overflow tiles."""
    st.subheader(experiment["experiment_id"])
    facts = {
        "Status": _or_none(experiment["experiment_status"], "{}"),
        "Promoted arm": _or_none(experiment["promoted_arm"], "{}"),
        "Started": _or_none(experiment["started_at"], "{:%d %b %Y %H:%M} UTC"),
        "Primary metric": _or_none(experiment["primary_metric"], "`{}`"),
        "Results": f"{experiment['first_result_date']:%d %b %Y} to "
        f"{experiment['last_result_date']:%d %b %Y}, cumulative from the start",
    }
    st.markdown(
        " · ".join(f"**{label}** {value or charts.MISSING}" for label, value in facts.items())
    )


def _sample_ratio(arms: pd.DataFrame) -> None:
    """Tiles of the day's exposed users and SRM p-value; an alarm when the split is broken."""
    if arms.empty:  # the chart below says so too
        return
    first = arms.iloc[0]
    exposed, planned, srm = st.columns(3)
    exposed.metric("Exposed users", f"{arms['exposed_users'].sum():,.0f}")
    reached = {True: " (reached)", False: " (not yet)"}.get(first["sample_size_reached"], "")
    planned.metric(
        "Planned sample size", _or_none(first["planned_sample_size"], "{:,.0f}" + reached)
    )
    p_value = first["srm_p_value"]
    srm.metric("SRM p-value", _or_none(p_value, "{:.3g}"))
    if pd.notna(p_value) and p_value < SRM_ALPHA:
        st.error(
            f"**{SRM_WARNING}** The SRM p-value {p_value:.2g} is below {SRM_ALPHA}: the arms' "
            "exposed users do not match the planned split, so the assignment or the exposure "
            "logging is broken and the lifts below are biased whatever their intervals say.",
            icon="⚠️",
        )


def _split_chart(arms: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    figure.add_bar(
        x=arms["arm"],
        y=arms["exposed_share"],
        name="exposed",
        text=arms["exposed_users"].map("{:,.0f} users".format),
        textposition="outside",
        hovertemplate=f"%{{x}}: %{{y:{LIFT_HOVER}}} of exposed users (%{{text}})<extra></extra>",
    )
    figure.add_bar(
        x=arms["arm"],
        y=arms["planned_share"],
        name="planned",
        hovertemplate=f"%{{x}}: %{{y:{LIFT_HOVER}}} planned<extra></extra>",
    )
    figure.update_layout(barmode="group", height=400)
    figure.update_xaxes(title="arm")
    figure.update_yaxes(
        title="share of exposed users", tickformat=".0%", rangemode="tozero", range=[0, 1.05]
    )
    return charts.style(figure)


def _lift_chart(lifts: pd.DataFrame) -> go.Figure:
    """One panel per metric (the rows' order), each on its own scale: per challenger its CUPED
    lift with the 95% interval, the raw one beside it."""
    metrics = list(dict.fromkeys(lifts["metric"]))[:MAX_PANELS]
    roles = dict(zip(lifts["metric"], lifts["metric_role"], strict=False))
    figure = make_subplots(
        rows=1,
        cols=len(metrics),
        subplot_titles=[f"{metric} ({roles[metric]})" for metric in metrics],
        horizontal_spacing=0.08,
    )
    for column, metric in enumerate(metrics, start=1):
        rows = lifts[lifts["metric"] == metric]
        for name, (lift, low, high) in ESTIMATES.items():
            trace = _interval_trace(rows, "arm", lift, low, high, name, legend=column == 1)
            figure.add_scatter(**trace, marker_color=COLOURS[name], row=1, col=column)
        figure.update_xaxes(title="challenger", row=1, col=column)
    figure.update_yaxes(tickformat=LIFT_FORMAT, hoverformat=LIFT_HOVER, rangemode="tozero")
    figure.update_yaxes(title="lift vs control (95% interval)", row=1, col=1)
    _zero_line(figure)
    figure.update_layout(scattermode="group", height=450)
    return charts.style(figure)


def _lift_by_day_chart(days: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    arms = list(dict.fromkeys(days["arm"]))
    for arm in arms:
        rows = days[days["arm"] == arm]
        trace = _interval_trace(
            rows, "result_date", *ESTIMATES["CUPED"], name=arm, legend=len(arms) > 1
        )
        figure.add_scatter(**{**trace, "mode": "lines+markers"})
    figure.update_layout(hovermode="x unified", height=400)
    charts.daily_axis(figure, days["result_date"])
    figure.update_xaxes(title="result day")
    figure.update_yaxes(
        title=f"CUPED lift of {days['metric'].iloc[0]}",
        tickformat=LIFT_FORMAT,
        hoverformat=LIFT_HOVER,
        rangemode="tozero",
    )
    _zero_line(figure)
    return charts.style(figure)


def _interval_trace(
    rows: pd.DataFrame, x: str, lift: str, low: str, high: str, name: str, legend: bool
) -> dict[str, object]:
    """A scatter's arguments: the lift column as points, its interval as error bars."""
    return {
        "x": rows[x],
        "y": rows[lift],
        "name": name,
        "legendgroup": name,
        "showlegend": legend,
        "mode": "markers",
        "marker_size": 10,
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": rows[high] - rows[lift],
            "arrayminus": rows[lift] - rows[low],
        },
        "customdata": rows[[low, high]].to_numpy(),
        "hovertemplate": (
            f"%{{x}}: %{{y:{LIFT_HOVER}}} (95%: %{{customdata[0]:{LIFT_HOVER}}} to "
            f"%{{customdata[1]:{LIFT_HOVER}}})<extra>{name}</extra>"
        ),
    }


def _zero_line(figure: go.Figure) -> None:
    """No difference from the control: an interval crossing this line is not significant."""
    for axis in figure.select_yaxes():
        reference = axis.plotly_name.replace("axis", "")  # yaxis2 -> y2
        figure.add_shape(
            type="line",
            xref=f"x{reference[1:]} domain",
            yref=reference,
            x0=0,
            x1=1,
            y0=0,
            y1=0,
            line={"color": "rgba(0, 0, 0, 0.45)", "width": 1, "dash": "dot"},
            layer="below",
        )


def _or_none(value: object, template: str) -> str | None:
    """`value` formatted, or None (a dash in a tile) when it is null."""
    return None if pd.isna(value) else template.format(value)
