"""The dashboards end to end: `audotics dashboards` serves them from a small hand-made warehouse
(the marts' tables with a few rows, in a database of its own) and headless Chromium renders each
page; the data of every chart, read from the browser's Plotly objects, must be the rows put in,
and every page must read clearly (no None or NaN, axis titles, bounded heights, a CSV per chart)
and follow the sidebar's date range and filters.

Chromium: $CHROMIUM_PATH, else `chromium` (Debian's package; `make setup` installs it as root) on
PATH. Playwright drives it, so no browser is downloaded."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
import yaml
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from audotics.db import engine, libpq_url
from audotics.settings import Settings
from tests.support import REPO, free_port

STARTUP_TIMEOUT_S = 45
RENDER_TIMEOUT_MS = 30_000
DOWNLOAD_CLICKS, DOWNLOAD_WAIT_MS = 3, 60_000
DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(4)]
LATEST = DAYS[-1]


@dataclass(frozen=True)
class Table:
    columns: str  # "name type, ..." as in `create table`
    rows: list[tuple[Any, ...]]

    @property
    def names(self) -> list[str]:
        return [column.split()[0] for column in self.columns.split(",")]

    def column(self, name: str) -> list[Any]:
        index = self.names.index(name)
        return [row[index] for row in self.rows]


def trained_at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(3), dt.UTC)


def performance_row(model: str, status: str, trained: dt.date, *numbers: float) -> tuple[Any, ...]:
    """A mart_recommendation_performance row of a registered model trained on `trained` that
    served until the next day. numbers: recommended plays, share of all plays, played through,
    skipped, stored lists, catalog and user coverage."""
    served_until = trained + dt.timedelta(days=1)
    return (model, status, "implicit", trained_at(trained), trained, served_until, *numbers, True)


TRACKS = {  # track_id -> (title, artist_id, artist_name, genre)
    "t1": ("Midnight Drive", "a1", "Neon Lakes", "electronic"),
    "t2": ("Golden Hour", "a1", "Neon Lakes", "electronic"),
    "t3": ("Paper Boats", "a2", "Juniper Row", "indie"),
    "t4": ("Low Tide", "a3", "Mara Quinn", "jazz"),
}
# (event_date, track_id, user_id, is_play): on the latest day Neon Lakes has 4 plays (skips do
# not count), Juniper Row 3 and Mara Quinn 1; the day before does not count at all.
EVENTS = [
    *[(LATEST, "t1", f"u{n}", True) for n in range(3)],
    (LATEST, "t2", "u1", True),
    (LATEST, "t2", "u2", False),
    *[(LATEST, "t3", f"u{n}", True) for n in range(3, 6)],
    (LATEST, "t4", "u1", True),
    *[(DAYS[-2], "t4", f"u{n}", True) for n in range(9)],
]
TOP_ARTISTS = {"Neon Lakes": 4, "Juniper Row": 3, "Mara Quinn": 1}
MODELS = ["als-20261102-aaaaaa", "als-20261103-bbbbbb"]  # trained in this order
EVENTS_ONLY_MODEL = "als-20261001-cccccc"  # named by events only: not in the registry
# Not in the registry: no status, engine, training time, stored lists nor coverage.
EVENTS_ONLY_PERFORMANCE = (
    EVENTS_ONLY_MODEL, None, None, None, LATEST, LATEST, 50, 0.05, 0.5, 0.3, 0, None, None, False
)  # fmt: skip
GENRE_PLAYS = {"pop": [500, 520, 480, 600], "rock": [300, 380, 370, 400], "jazz": [100] * 4}
# landing day -> quarantined lines per reason
QUARANTINED = dict(zip(DAYS, [(100, 40), (80, 60), (120, 20), (90, 30)], strict=True))
REASONS = ("malformed_json", "unknown_user_id")
# Reasons with few lines a day: the chart keeps the top 5 reasons and sums the rest as "other".
MINOR_REASONS = {
    "bad_timestamp": 9, "duplicate_event": 8, "unknown_track_id": 7,
    "zero_ms": 6, "bad_context": 2, "bad_device": 1,
}  # fmt: skip
INPUT_RECORDS = 20_000
BROKE_BOTH_RULES = 10  # quarantined lines a day counted under both reasons


def quality_row(day: dt.date, reason: str, count: int) -> tuple[Any, ...]:
    """A mart_data_quality row; the latest day's ingestion run failed."""
    day_total = sum(QUARANTINED[day]) - BROKE_BOTH_RULES
    status = "failed" if day == LATEST else "success"
    return (
        day, reason, count, INPUT_RECORDS, count / INPUT_RECORDS,
        day_total, day_total / INPUT_RECORDS, f"run-{day:%m%d}", status,
    )  # fmt: skip


# Two experiments: the newer one (the page's default) promoted its challenger; the older one
# was stopped for a sample ratio mismatch on its latest day.
NEW_EXPERIMENT, OLD_EXPERIMENT = "exp-20261103-bbbbbb", "exp-20261101-aaaaaa"
EXPERIMENT_METRICS = {  # metric -> role; the mart's order is not the page's (primary first)
    "skip_rate": "guardrail",
    "recommendation_minutes": "primary",
    "listening_minutes": "guardrail",
}
# experiment -> result day -> ((control, challenger) exposed users, SRM p-value)
EXPOSURE = {
    NEW_EXPERIMENT: {DAYS[2]: ((100, 104), 0.78), DAYS[3]: ((250, 262), 0.6)},
    OLD_EXPERIMENT: {DAYS[0]: ((90, 95), 0.71), DAYS[1]: ((120, 200), 0.0002)},
}
# experiment -> result day -> metric -> the challenger's CUPED lift, low, high, raw lift, low, high
LIFTS = {
    NEW_EXPERIMENT: {
        DAYS[2]: {
            "recommendation_minutes": (0.08, -0.04, 0.2, 0.07, -0.07, 0.21),
            "listening_minutes": (0.01, -0.06, 0.08, 0.0, -0.09, 0.09),
            "skip_rate": (-0.02, -0.1, 0.06, -0.03, -0.13, 0.07),
        },
        DAYS[3]: {
            "recommendation_minutes": (0.12, 0.04, 0.2, 0.1, -0.01, 0.21),
            "listening_minutes": (0.02, -0.03, 0.07, 0.015, -0.05, 0.08),
            "skip_rate": (-0.01, -0.06, 0.04, -0.012, -0.08, 0.056),
        },
    },
    OLD_EXPERIMENT: {
        day: {metric: (0.3, 0.1, 0.5, 0.25, 0.0, 0.5) for metric in EXPERIMENT_METRICS}
        for day in DAYS[:2]
    },
}
EXPERIMENT_CHARTS = {
    "Exposed users per arm vs the planned split",
    "Lift per metric, each challenger vs the control",
    "Primary metric: CUPED lift per result day",
}
SRM_WARNING = "Sample ratio mismatch: results not trustworthy"


def experiment_rows(experiment: str, status: str) -> list[tuple[Any, ...]]:
    """mart_experiment_results rows of `experiment`: per day, arm and metric (the control's
    lifts null), from EXPOSURE and LIFTS; the arms' mean values are made up."""
    rows = []
    for day, (exposed, srm_p_value) in EXPOSURE[experiment].items():
        for metric, role in EXPERIMENT_METRICS.items():
            for arm, users, lifts in [
                ("control", exposed[0], (None,) * 6),
                ("challenger", exposed[1], LIFTS[experiment][day][metric]),
            ]:
                cuped, cuped_low, cuped_high, raw, raw_low, raw_high = lifts
                rows.append(
                    (
                        experiment, day, arm, f"als-{arm}", arm == "control", 0.5, users,
                        metric, role, users, 10.0, raw, raw_low, raw_high,
                        cuped, cuped_low, cuped_high, srm_p_value, 400, sum(exposed) >= 400,
                        status,
                    )
                )  # fmt: skip
    return rows


EXPERIMENT_RESULTS_COLUMNS = (
    "experiment_id text, result_date date, arm text, model_version text, is_control boolean, "
    "planned_share double precision, exposed_users bigint, metric text, metric_role text, "
    "users_measured bigint, mean_value double precision, lift double precision, "
    "lift_ci_low double precision, lift_ci_high double precision, "
    "cuped_lift double precision, cuped_lift_ci_low double precision, "
    "cuped_lift_ci_high double precision, srm_p_value double precision, "
    "planned_sample_size bigint, sample_size_reached boolean, experiment_status text"
)
# The experiment registry, a dbt staging view: the page reads each experiment's facts there.
STAGING: dict[str, Table] = {
    "stg_experiments": Table(
        "experiment_id text, primary_metric text, experiment_status text, promoted_arm text, "
        "started_at timestamptz",
        [
            (OLD_EXPERIMENT, "recommendation_minutes", "stopped", None, trained_at(DAYS[0])),
            (
                NEW_EXPERIMENT,
                "recommendation_minutes",
                "promoted",
                "challenger",
                trained_at(DAYS[2]),
            ),
        ],
    ),
}

WAREHOUSE: dict[str, Table] = {
    "mart_daily_kpis": Table(
        "kpi_date date, daily_active_users bigint, weekly_active_users bigint, "
        "monthly_active_users bigint, listening_hours double precision, plays bigint, "
        "skips bigint, skip_rate double precision, new_users bigint, has_full_mau_window boolean",
        [
            (day, dau, wau, mau, hours, plays, skips, skips / (plays + skips), new, False)
            for day, dau, wau, mau, hours, plays, skips, new in [
                (DAYS[0], 120, 120, 120, 210.5, 900, 300, 15),
                (DAYS[1], 135, 160, 160, 240.25, 1000, 250, 12),
                (DAYS[2], 128, 180, 180, 225.0, 950, 190, 9),
                (DAYS[3], 142, 196, 196, 260.75, 1100, 220, 20),
            ]
        ],
    ),
    "mart_top_tracks_daily": Table(
        "event_date date, daily_rank bigint, title text, artist_name text, genre text, "
        "plays bigint, listeners bigint, skip_rate double precision",
        [
            (LATEST, 1, "Midnight Drive", "Neon Lakes", "electronic", 42, 30, 0.1),
            (LATEST, 2, "Paper Boats", "Juniper Row", "indie", 35, 28, 0.2),
            (LATEST, 3, "Golden Hour", "Neon Lakes", "electronic", 28, 20, 0.05),
            (LATEST, 4, "Low Tide", "Mara Quinn", "jazz", 12, 11, 0.3),
            (DAYS[-2], 1, "Low Tide", "Mara Quinn", "jazz", 99, 60, 0.1),
        ],
    ),
    "dim_tracks": Table(
        "track_id text, title text, artist_id text, artist_name text, genre text",
        [(track_id, *details) for track_id, details in TRACKS.items()],
    ),
    "fct_listening_events": Table(
        "event_date date, track_id text, user_id text, is_play boolean", EVENTS
    ),
    "mart_genre_trends": Table(
        "event_date date, genre text, plays bigint, play_share double precision",
        [
            (day, genre, plays[n], plays[n] / sum(p[n] for p in GENRE_PLAYS.values()))
            for n, day in enumerate(DAYS)
            for genre, plays in GENRE_PLAYS.items()
        ],
    ),
    "mart_retention_cohorts": Table(
        "cohort_week date, weeks_since_signup integer, cohort_size bigint, active_users bigint, "
        "retention_rate double precision, is_complete_week boolean, activity_week date",
        [
            # activity_week = cohort_week + weeks_since_signup; the 19 Oct cohort signed up before
            # the date range, so the triangle leaves it out
            (*row, row[0] + dt.timedelta(weeks=row[1]))
            for row in [
                (dt.date(2026, 10, 19), 1, 40, 20, 0.5, False),
                (dt.date(2026, 10, 19), 2, 40, 10, 0.25, False),
                (dt.date(2026, 10, 26), 0, 50, 40, 0.8, False),
                (dt.date(2026, 10, 26), 1, 50, 30, 0.6, False),
                (dt.date(2026, 11, 2), 0, 30, 27, 0.9, False),
            ]
        ],
    ),
    "mart_playlist_engagement": Table(
        "playlist_id text, playlist_name text, owner_user_id text, plays bigint, "
        "listeners bigint, skip_rate double precision, tracks_added bigint, track_count bigint",
        [
            ("p1", "Morning run", "u1", 25, 9, 0.1, 4, 30),
            ("p2", "Focus", "u2", 18, 7, 0.2, 2, 12),
            ("p3", "Morning run", "u2", 7, 3, 0.0, 0, 8),
            ("p4", "Never played", "u1", 0, 0, None, 1, 3),
        ],
    ),
    "dim_users": Table("user_id text, username text", [("u1", "alice"), ("u2", "bob")]),
    "mart_recommendation_performance": Table(
        "model_version text, model_status text, model_engine text, trained_at timestamptz, "
        "first_served_date date, last_served_date date, recommended_plays bigint, "
        "recommended_play_share double precision, play_through_rate double precision, "
        "skip_rate double precision, recommendations bigint, "
        "catalog_coverage double precision, user_coverage double precision, "
        "is_registered boolean",
        [
            EVENTS_ONLY_PERFORMANCE,
            performance_row(
                MODELS[1], "published", DAYS[2], 300, 0.15, 0.61, 0.24, 5000, 0.25, 0.95
            ),
            performance_row(
                MODELS[0], "rejected", DAYS[1], 200, 0.12, 0.55, 0.30, 4800, 0.20, 0.90
            ),
        ],
    ),
    "mart_model_evaluations": Table(
        "model_version text, model_status text, metric_name text, "
        "metric_value double precision, baseline_value double precision, "
        "relative_lift double precision, trained_at timestamptz",
        [
            (MODELS[0], "rejected", "ndcg@10", 0.09, 0.06, 0.5, trained_at(DAYS[1])),
            (MODELS[0], "rejected", "recall@10", 0.12, 0.10, 0.2, trained_at(DAYS[1])),
            (MODELS[1], "published", "ndcg@10", 0.12, 0.06, 1.0, trained_at(DAYS[2])),
            (MODELS[1], "published", "recall@10", 0.15, 0.10, 0.5, trained_at(DAYS[2])),
            # A rate far above the baseline, and a count: each gets a panel of its own scale.
            (MODELS[1], "published", "coverage@10", 0.31, 0.03, 9.3, trained_at(DAYS[2])),
            (MODELS[1], "published", "users", 1100, 1100, 0.0, trained_at(DAYS[2])),
        ],
    ),
    "mart_data_quality": Table(
        "landing_date date, reason text, quarantined_records bigint, input_records bigint, "
        "quarantine_rate double precision, day_quarantined_records bigint, "
        "day_quarantine_rate double precision, ingest_run_id text, run_status text",
        [
            quality_row(day, reason, count)
            for day, counts in QUARANTINED.items()
            for reason, count in [*zip(REASONS, counts, strict=True), *MINOR_REASONS.items()]
        ],
    ),
    "mart_experiment_results": Table(
        EXPERIMENT_RESULTS_COLUMNS,
        experiment_rows(OLD_EXPERIMENT, "stopped") + experiment_rows(NEW_EXPERIMENT, "running"),
    ),
}


def fill_warehouse(settings: Settings, empty: bool = False) -> None:
    """Create the marts the dashboards read (and the staging views they join), with the rows
    above; `empty`: without rows, as after a pipeline run before the first events."""
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        for schema, tables in (("marts", WAREHOUSE), ("staging", STAGING)):
            conn.execute(f"create schema if not exists {schema}")
            for name, table in tables.items():
                conn.execute(f"create table {schema}.{name} ({table.columns})")
                if empty:
                    continue
                placeholders = ", ".join(["%s"] * len(table.names))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"insert into {schema}.{name} values ({placeholders})", table.rows
                    )


def test_hand_made_marts_match_the_dbt_project() -> None:
    """Every column the test creates (so every column the dashboards read) is one the dbt project
    documents for that model: renaming a mart's column breaks this test, not the dashboards."""
    for folder, tables in (("marts", WAREHOUSE), ("staging", STAGING)):
        documented: dict[str, set[str]] = {}
        for schema_file in (REPO / "dbt" / "models" / folder).rglob("*.yml"):
            for model in yaml.safe_load(schema_file.read_text()).get("models", []):
                documented[model["name"]] = {column["name"] for column in model.get("columns", [])}
        for name, table in tables.items():
            assert name in documented, f"dbt has no model {name}"
            assert set(table.names) <= documented[name], (name, set(table.names) - documented[name])


# --- the browser side ----------------------------------------------------------------------

# The title, y-axis title, height, traces and drawn marks of every Plotly chart on the page, from
# Plotly's own objects.
READ_CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(chart => ({
    title: chart._fullLayout.title.text.replace(/<[^>]+>/g, ''),  // Streamlit adds <b> tags
    y_title: chart._fullLayout.yaxis.title.text,
    height: chart.getBoundingClientRect().height,
    traces: chart._fullData.map(trace => ({
        name: trace.name,
        type: trace.type,
        x: trace.x ? Array.from(trace.x) : null,
        y: trace.y ? Array.from(trace.y) : null,
        z: trace.z ? Array.from(trace.z, row => Array.from(row)) : null,
        // error bars: [up, down] lengths of each point
        errors: trace.error_y && trace.error_y.visible
            ? [Array.from(trace.error_y.array), Array.from(trace.error_y.arrayminus)] : null,
    })),
    panels: (chart._fullLayout.annotations || []).map(note => note.text),
    bars: chart.querySelectorAll('g.trace.bars g.point').length,
    markers: chart.querySelectorAll('g.trace.scatter path.point').length,
    heatmap_images: chart.querySelectorAll('g.hm image').length,
}))"""


def wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"audotics dashboards exited {server.process.returncode}:\n"
                + server.log.read_text()
            )
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the dashboards did not answer in {STARTUP_TIMEOUT_S}s:\n{server.log.read_text()}")


@dataclass(frozen=True)
class Server:
    platform: Settings
    url: str
    process: subprocess.Popen
    log: Path


@dataclass(frozen=True)
class Dashboards:
    page: Page  # one browser tab for all pages: they share the loaded app, as a reader's do
    before_marts: str  # what the home page said while the warehouse had no marts


@contextmanager
def serving(platform: Settings, env_for, log: Path) -> Iterator[Server]:
    """`audotics dashboards` on `platform`, starting (not yet answering)."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "audotics"), "dashboards", "--port", str(port)],
            env=env_for(platform), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield Server(platform, f"http://127.0.0.1:{port}", process, log)
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(isolated_platform, env_for, tmp_path_factory) -> Iterator[Server]:
    """`audotics dashboards` on a database of its own, starting (not yet answering)."""
    log = tmp_path_factory.mktemp("dashboards") / "server.log"
    with serving(isolated_platform("dashboards"), env_for, log) as running:
        yield running


@pytest.fixture(scope="module")
def dashboards(server: Server, browser: Browser) -> Iterator[Dashboards]:
    """The dashboards in a browser tab once they answer: first without marts (the home page's
    message is kept), then on WAREHOUSE. The browser starts while the server does."""
    wait_until_serving(server)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    page.goto(server.url)
    message = page.get_by_text("The warehouse has no marts yet")
    message.wait_for()
    before_marts = message.inner_text()
    fill_warehouse(server.platform)
    yield Dashboards(page, before_marts)
    page.close()


def open_dashboard(page: Page, title: str) -> None:
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title, level=1).wait_for()


def charts_of(page: Page, titles: set[str]) -> dict[str, dict[str, Any]]:
    """Wait until the page shows exactly the charts `titles`, drawn; return them by title."""
    page.wait_for_function(
        """titles => {
            const drawn = Array.from(document.querySelectorAll('.js-plotly-plot'))
                .filter(chart => chart._fullLayout && chart.querySelector('g.trace, g.hm'))
                .map(chart => chart._fullLayout.title.text.replace(/<[^>]+>/g, ''));
            return JSON.stringify(drawn.sort()) === JSON.stringify(titles.sort());
        }""",
        arg=sorted(titles),
    )
    return {chart["title"]: chart for chart in page.evaluate(READ_CHARTS)}


def series(chart: dict[str, Any]) -> dict[str, tuple[list[Any], list[Any]]]:
    """name -> (x, y) of each trace."""
    return {trace["name"]: (trace["x"], trace["y"]) for trace in chart["traces"]}


def nulls(values: list[Any]) -> list[Any]:
    """The values with NaN (Plotly's gaps; NaN != NaN) as None, to compare with the rows."""
    return [None if value != value else value for value in values]


def iso(days: list[dt.date]) -> list[str]:
    return [day.isoformat() for day in days]


LISTENING_CHARTS = {
    "Active users",
    "Listening hours",
    "Skip rate",
    "New users",
    "Top 10 tracks on 04 Nov 2026",
    "Top 10 artists on 04 Nov 2026",
    "Plays per genre",
    "Weekly retention by signup cohort",
    "Top 10 playlists by plays (all time)",
}
RECOMMENDATION_CHARTS = {
    "Recommendation-context plays per model version",
    "Coverage per model version",
    "Offline metrics per model version",
    "Lift over the popularity baseline",
}
QUALITY_CHARTS = {"Quarantine rate per landing day", "Quarantine rate per reason"}
PAGES = {
    "Listening overview": LISTENING_CHARTS,
    "Recommendations": RECOMMENDATION_CHARTS,
    "Data quality": QUALITY_CHARTS,
    "Experiments": EXPERIMENT_CHARTS,
}
NO_DATA = "No data for this range"


def test_without_marts_the_page_says_what_to_run(dashboards: Dashboards) -> None:
    assert "Run make run first" in dashboards.before_marts
    assert "marts.mart_daily_kpis" in dashboards.before_marts


def test_listening_overview_plots_the_marts(dashboards: Dashboards) -> None:
    page = dashboards.page
    open_dashboard(page, "Listening overview")
    charts = charts_of(page, LISTENING_CHARTS)
    kpis = WAREHOUSE["mart_daily_kpis"]
    days = iso(kpis.column("kpi_date"))

    tiles = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert tiles == ["142", "196", "196", "260.8", "16.67%", "20"]
    assert series(charts["Active users"]) == {
        "DAU": (days, kpis.column("daily_active_users")),
        "WAU": (days, kpis.column("weekly_active_users")),
        "MAU": (days, kpis.column("monthly_active_users")),
    }
    assert charts["Active users"]["markers"] == 3 * len(days)
    assert series(charts["Listening hours"]) == {"hours": (days, kpis.column("listening_hours"))}
    assert series(charts["New users"]) == {"new users": (days, kpis.column("new_users"))}
    assert charts["New users"]["bars"] == len(days)
    skip_days, skip_rates = series(charts["Skip rate"])["skip rate"]
    assert skip_days == days
    assert skip_rates == pytest.approx(kpis.column("skip_rate"))

    latest_tracks = [row for row in WAREHOUSE["mart_top_tracks_daily"].rows if row[0] == LATEST]
    ((track_plays, track_labels),) = series(charts["Top 10 tracks on 04 Nov 2026"]).values()
    assert track_plays == [row[5] for row in latest_tracks]
    assert track_labels == [f"{row[2]} · {row[3]}" for row in latest_tracks]
    ((artist_plays, artists),) = [
        (trace["x"], trace["y"]) for trace in charts["Top 10 artists on 04 Nov 2026"]["traces"]
    ]
    assert dict(zip(artists, artist_plays, strict=True)) == TOP_ARTISTS
    assert artists == list(TOP_ARTISTS)
    assert charts["Top 10 artists on 04 Nov 2026"]["bars"] == len(TOP_ARTISTS)

    genres = WAREHOUSE["mart_genre_trends"].rows
    assert series(charts["Plays per genre"]) == {
        genre: (days, [row[2] for row in genres if row[1] == genre])
        for genre in ("pop", "rock", "jazz")  # biggest first
    }

    (heatmap,) = charts["Weekly retention by signup cohort"]["traces"]
    assert heatmap["x"] == ["week 0", "week 1"]
    assert heatmap["y"] == ["26 Oct 2026 (n=50)", "02 Nov 2026 (n=30)"]
    assert [nulls(row) for row in heatmap["z"]] == [
        [0.8, 0.6],
        [0.9, None],  # a week after the range
    ]
    assert charts["Weekly retention by signup cohort"]["heatmap_images"] == 1

    ((playlist_plays, playlists),) = [
        (trace["x"], trace["y"])
        for trace in charts["Top 10 playlists by plays (all time)"]["traces"]
    ]
    assert playlists == ["Morning run (alice)", "Focus (bob)", "Morning run (bob)"]
    assert playlist_plays == [25, 18, 7]  # the unplayed playlist is left out


def test_retention_triangle_is_bounded_in_sql(server: Server, dashboards: Dashboards) -> None:
    """The latest `cohorts` cohorts of the range by their first `weeks` weeks, as of the range's
    end: the query bounds the triangle, so the page never loads every cohort by every week."""
    sql = sa.text((REPO / "dashboards" / "listening" / "retention_cohorts.sql").read_text())
    with engine(server.platform).connect() as connection:

        def triangle(**params: Any) -> list[tuple[str, int]]:
            rows = pd.read_sql_query(sql, connection, params=params)
            return [
                (f"{row.cohort_week:%m-%d}", row.weeks_since_signup) for row in rows.itertuples()
            ]

        assert triangle(start=DAYS[0], end=LATEST, cohorts=1, weeks=1) == [("11-02", 0)]
        assert triangle(start=DAYS[0], end=LATEST, cohorts=2, weeks=2) == [
            ("10-26", 0), ("10-26", 1), ("11-02", 0),
        ]  # fmt: skip
        assert triangle(start=DAYS[0], end=DAYS[0], cohorts=12, weeks=12) == [("10-26", 0)]
        start = dt.date(2026, 10, 1)  # a range that begins before the 19 Oct cohort
        assert len(triangle(start=start, end=LATEST, cohorts=12, weeks=12)) == 5


def settle(page: Page) -> None:
    """Wait until the app's script run is over: a click while it still redraws can be lost."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def first_csv(page: Page) -> tuple[pd.DataFrame, str]:
    """The rows of the page's first chart from its CSV download, and the file's name."""
    settle(page)
    behind = page.get_by_test_id("stExpander").first
    behind.get_by_text("Table and CSV").click()
    button = behind.get_by_role("button", name="Download CSV")
    button.wait_for(state="visible")
    # The file is served when clicked: on two busy cores that took over 30 s (the default).
    # A click can also go unheard (once in a CI run, 2 minutes passed with no download): the
    # button is clicked again, up to DOWNLOAD_CLICKS times.
    for click in range(1, DOWNLOAD_CLICKS + 1):
        settle(page)
        try:
            with page.expect_download(timeout=DOWNLOAD_WAIT_MS) as download:
                button.click()
            break
        except PlaywrightTimeoutError:
            if click == DOWNLOAD_CLICKS:
                raise
    return pd.read_csv(download.value.path()), download.value.suggested_filename


def pick(page: Page, option: str) -> None:
    """Pick `option` in the sidebar's filter (the page has one)."""
    settle(page)
    page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").click()
    page.get_by_role("option", name=option).click()
    # Tab away, not Escape: on a menu the rerun has closed already, Escape clears the pick.
    page.keyboard.press("Tab")


def test_recommendations_plot_each_model_version(dashboards: Dashboards) -> None:
    page = dashboards.page
    open_dashboard(page, "Recommendations")
    assert page.url.endswith("/recommendations")
    charts = charts_of(page, RECOMMENDATION_CHARTS)
    versions = [EVENTS_ONLY_MODEL, *MODELS]  # oldest model first, the unregistered one before
    # One panel (trace) per measure or metric, each on its own scale: name -> (values, versions).
    assert series(charts["Recommendation-context plays per model version"]) == {
        "share of all plays": ([0.05, 0.12, 0.15], versions),
        "played through": ([0.5, 0.55, 0.61], versions),
        "skipped": ([0.3, 0.30, 0.24], versions),
    }
    assert charts["Recommendation-context plays per model version"]["bars"] == 9
    coverage = series(charts["Coverage per model version"])
    assert {name: (nulls(rates), labels) for name, (rates, labels) in coverage.items()} == {
        "catalog coverage": ([None, 0.20, 0.25], versions),  # no stored lists: no coverage
        "user coverage": ([None, 0.90, 0.95], versions),
    }
    assert series(charts["Offline metrics per model version"]) == {
        "ndcg@10": ([0.09, 0.12], MODELS),
        "recall@10": ([0.12, 0.15], MODELS),
        "coverage@10": ([0.31], MODELS[1:]),
        "users": ([1100], MODELS[1:]),  # a count, beside the rates but on a scale of its own
    }
    assert (
        series(charts["Lift over the popularity baseline"])
        == {  # rates only: no users
            "ndcg@10": ([0.5, 1.0], MODELS),
            "recall@10": ([0.2, 0.5], MODELS),
            "coverage@10": ([9.3], MODELS[1:]),
        }
    )
    # Behind the chart, as a CSV: the version the registry does not know is labelled.
    csv, _ = first_csv(page)
    assert list(csv["model_version"]) == versions
    assert list(csv["model_status"]) == ["seen only in events", "rejected", "published"]

    # The model version filter narrows every chart to the picked versions.
    pick(page, MODELS[1])
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .every(chart => chart._fullData.every(trace => trace.y.length === 1))"""
    )
    offline = series(charts_of(page, RECOMMENDATION_CHARTS)["Offline metrics per model version"])
    assert {name: versions for name, (_, versions) in offline.items()} == {
        name: MODELS[1:] for name in ("ndcg@10", "recall@10", "coverage@10", "users")
    }


def test_data_quality_plots_quarantine_per_day_and_reason(dashboards: Dashboards) -> None:
    page = dashboards.page
    open_dashboard(page, "Data quality")
    assert page.url.endswith("/data_quality")
    charts = charts_of(page, QUALITY_CHARTS)
    days = iso(DAYS)
    ((by_day_x, by_day_y),) = series(charts["Quarantine rate per landing day"]).values()
    assert by_day_x == days
    assert by_day_y == pytest.approx([0.0065, 0.0065, 0.0065, 0.0055])
    by_reason = series(charts["Quarantine rate per reason"])
    # The 5 reasons with the most lines, biggest first, then the others summed.
    assert list(by_reason) == [*REASONS, *list(MINOR_REASONS)[:3], "other"]
    assert by_reason["malformed_json"][1] == pytest.approx([0.005, 0.004, 0.006, 0.0045])
    assert by_reason["unknown_user_id"][1] == pytest.approx([0.002, 0.003, 0.001, 0.0015])
    assert by_reason["other"][1] == pytest.approx([(6 + 2 + 1) / INPUT_RECORDS] * len(days))
    assert charts["Quarantine rate per reason"]["markers"] == 6 * len(days)
    assert "No successful ingestion run for 04 Nov 2026" in page.inner_text("body")

    # Behind the chart: its rows as a CSV download.
    csv, file_name = first_csv(page)
    assert list(csv["landing_date"]) == days
    assert list(csv["day_quarantine_rate"]) == pytest.approx(by_day_y)
    assert file_name == "quarantine-rate-per-landing-day.csv"

    # The reason filter: a minor reason alone is drawn, not summed into "other".
    pick(page, "bad_device")
    page.wait_for_function(
        """names => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .some(chart => chart._fullData.map(trace => trace.name).join() === names)""",
        arg="bad_device",
    )
    by_reason = series(charts_of(page, QUALITY_CHARTS)["Quarantine rate per reason"])
    assert by_reason["bad_device"][1] == pytest.approx([1 / INPUT_RECORDS] * len(days))


def pick_experiment(page: Page, experiment: str) -> None:
    """Pick `experiment` in the sidebar's experiment picker."""
    settle(page)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=experiment).click()


def lifts_of(experiment: str, day: dt.date, metrics: list[str]) -> list[Any]:
    """Per metric, the CUPED then the raw estimate of the challenger on `day`: its name, lift
    and the lengths of its error bar up and down (to the interval's ends)."""
    drawn = []
    for metric in metrics:
        lifts = LIFTS[experiment][day][metric]
        for name, (lift, low, high) in (("CUPED", lifts[:3]), ("raw (unadjusted)", lifts[3:])):
            drawn.append((name, lift, high - lift, lift - low))
    return drawn


def assert_lifts(chart: dict[str, Any], expected: list[Any]) -> None:
    """The chart's traces of one point each are the estimates `expected` (as `lifts_of`)."""
    drawn = [
        (trace["name"], *trace["y"], *trace["errors"][0], *trace["errors"][1])
        for trace in chart["traces"]
    ]
    assert [name for name, *_ in drawn] == [name for name, *_ in expected]
    assert [numbers for _, *numbers in drawn] == [
        pytest.approx(numbers) for _, *numbers in expected
    ]


def test_experiments_show_the_split_and_the_lifts(dashboards: Dashboards) -> None:
    page = dashboards.page
    open_dashboard(page, "Experiments")
    assert page.url.endswith("/experiments")
    charts = charts_of(page, EXPERIMENT_CHARTS)
    # The newest experiment first, with its registry facts.
    page.get_by_role("heading", name=NEW_EXPERIMENT).wait_for()
    body = page.inner_text("body")
    assert "Status promoted · Promoted arm challenger · Started 03 Nov 2026 03:00 UTC" in body
    assert "SRM p-value\n\n0.6" in body
    assert SRM_WARNING not in body

    # The latest result day: exposed users' share per arm beside the planned share.
    assert series(charts["Exposed users per arm vs the planned split"]) == {
        "exposed": (["control", "challenger"], pytest.approx([250 / 512, 262 / 512])),
        "planned": (["control", "challenger"], [0.5, 0.5]),
    }
    # One panel per metric, the primary first; in each the challenger's CUPED lift and its raw
    # lift, each with its 95% interval as error bars.
    lifts = charts["Lift per metric, each challenger vs the control"]
    metrics = ["recommendation_minutes", "listening_minutes", "skip_rate"]
    assert lifts["panels"] == [f"{metric} ({EXPERIMENT_METRICS[metric]})" for metric in metrics]
    assert_lifts(lifts, lifts_of(NEW_EXPERIMENT, LATEST, metrics))
    assert {trace["x"][0] for trace in lifts["traces"]} == {"challenger"}
    # The primary metric day by day: cumulative CUPED lifts with their intervals.
    ((name, days, cuped, errors),) = [
        (trace["name"], trace["x"], trace["y"], trace["errors"])
        for trace in charts["Primary metric: CUPED lift per result day"]["traces"]
    ]
    assert (name, days) == ("challenger", iso(DAYS[2:]))
    assert cuped == pytest.approx([0.08, 0.12])
    assert errors[0] == pytest.approx([0.12, 0.08])  # up: to 0.2 both days
    assert errors[1] == pytest.approx([0.12, 0.08])  # down: to -0.04, then 0.04

    # Behind the first chart: the arms as a CSV download.
    csv, file_name = first_csv(page)
    assert list(csv["arm"]) == ["control", "challenger"]
    assert list(csv["exposed_users"]) == [250, 262]
    assert file_name == "exposed-users-per-arm-vs-the-planned-split.csv"

    # The older experiment: a broken split on its latest day is flagged loud.
    pick_experiment(page, OLD_EXPERIMENT)
    page.get_by_role("heading", name=OLD_EXPERIMENT).wait_for()
    page.get_by_text(SRM_WARNING).wait_for()
    body = page.inner_text("body")
    assert "Status stopped · Promoted arm — · Started 01 Nov 2026 03:00 UTC" in body
    assert "SRM p-value 0.0002 is below 0.001" in body
    charts = charts_of(page, EXPERIMENT_CHARTS)
    assert series(charts["Exposed users per arm vs the planned split"])["exposed"] == (
        ["control", "challenger"],
        pytest.approx([120 / 320, 200 / 320]),
    )
    assert_lifts(
        charts["Lift per metric, each challenger vs the control"],
        lifts_of(OLD_EXPERIMENT, DAYS[1], metrics),
    )
    assert not re.findall(r"\b(?:None|nan|NaN)\b", body)


def test_experiments_without_results_say_so(
    isolated_platform, env_for, browser: Browser, tmp_path: Path
) -> None:
    """Marts built before any experiment: an empty mart_experiment_results is news, not an
    error."""
    platform = isolated_platform("dashboards_empty")
    fill_warehouse(platform, empty=True)
    with serving(platform, env_for, tmp_path / "server.log") as empty:
        wait_until_serving(empty)
        page = browser.new_page()
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        try:
            page.goto(f"{empty.url}/experiments")
            page.get_by_text("No experiment has results yet").wait_for()
            assert "marts.mart_experiment_results is empty" in page.inner_text("body")
            assert page.locator(".js-plotly-plot").count() == 0
            assert page.get_by_test_id("stException").count() == 0
        finally:
            page.close()


def test_every_page_reads_clearly(dashboards: Dashboards) -> None:
    """No None or NaN shown, an axis title on every chart's y axis, no chart taller than twice
    the window, and a CSV download behind every chart."""
    page = dashboards.page
    assert page.viewport_size
    for title, chart_titles in PAGES.items():
        open_dashboard(page, title)
        charts = charts_of(page, chart_titles)
        assert not re.findall(r"\b(?:None|nan|NaN)\b", page.inner_text("body")), title
        for chart in charts.values():
            assert chart["y_title"], (title, chart["title"])
            assert chart["height"] <= 2 * page.viewport_size["height"], (title, chart["title"])
        # Waiting: a page can draw its last chart before the table and CSV behind it arrive.
        expect(page.get_by_test_id("stDownloadButton"), title).to_have_count(len(chart_titles))


def set_date_range(page: Page, start: dt.date, end: dt.date) -> None:
    """Type the range into the sidebar's date fields, as a reader does (year, month, day)."""
    settle(page)
    for field, day in (("start", start), ("end", end)):
        page.get_by_role("spinbutton", name=f"year, Date range {field} date").click()
        page.keyboard.type(f"{day:%Y%m%d}")
    page.keyboard.press("Escape")  # closes the calendar
    page.get_by_role("heading", level=1).click()  # leaving the field sends the range


def wait_for_no_data(page: Page, messages: int) -> None:
    """Wait until the page shows the no-data message `messages` times (it renders in steps)."""
    page.wait_for_function(
        "([text, n]) => document.body.innerText.split(text).length - 1 === n",
        arg=[NO_DATA, messages],
    )


# Last: it leaves the page on a range of its own.
def test_the_date_range_feeds_the_queries(dashboards: Dashboards) -> None:
    page = dashboards.page
    open_dashboard(page, "Listening overview")
    charts_of(page, LISTENING_CHARTS)

    set_date_range(page, DAYS[1], DAYS[2])
    # The day of the top tracks and artists follows the range's end.
    charts = charts_of(
        page,
        LISTENING_CHARTS - {"Top 10 tracks on 04 Nov 2026", "Top 10 artists on 04 Nov 2026"}
        | {"Top 10 tracks on 03 Nov 2026", "Top 10 artists on 03 Nov 2026"},
    )
    assert page.get_by_role("heading", name="Tuesday 03 November 2026").is_visible()
    tiles = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert tiles == ["128", "180", "180", "225", "16.67%", "9"]
    assert series(charts["Active users"])["DAU"] == (iso(DAYS[1:3]), [135, 128])
    assert series(charts["Plays per genre"])["pop"] == (iso(DAYS[1:3]), [520, 480])

    before_history = (dt.date(2026, 10, 1), dt.date(2026, 10, 5))
    set_date_range(page, *before_history)
    # The KPI tiles and every chart say so, but the all-time playlists; nothing reads None/NaN.
    wait_for_no_data(page, 1 + len(LISTENING_CHARTS) - 1)
    charts_of(page, {"Top 10 playlists by plays (all time)"})
    assert not re.findall(r"\b(?:None|nan|NaN)\b", page.inner_text("body"))

    open_dashboard(page, "Data quality")  # a range of its own
    charts_of(page, QUALITY_CHARTS)
    set_date_range(page, *before_history)
    wait_for_no_data(page, 1 + len(QUALITY_CHARTS))  # the tiles and the charts
    assert not re.findall(r"\b(?:None|nan|NaN)\b", page.inner_text("body"))
