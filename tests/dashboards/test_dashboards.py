"""The dashboards end to end: `audotics dashboards` serves them from a small hand-made warehouse
(the marts' tables with a few rows, in a database of its own) and headless Chromium renders each
page; the data of every chart, read from the browser's Plotly objects, must be the rows put in.

Chromium: $CHROMIUM_PATH, else `chromium` (Debian's package; `make setup` installs it as root) on
PATH. Playwright drives it, so no browser is downloaded."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from playwright.sync_api import Browser, Page

from audotics.db import libpq_url
from audotics.settings import Settings
from tests.support import REPO, free_port

STARTUP_TIMEOUT_S = 45
RENDER_TIMEOUT_MS = 30_000
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
    """A mart_recommendation_performance row of a model trained on `trained` that served until the
    next day. numbers: recommended plays, share of all plays, played through, skipped, stored
    lists, catalog and user coverage."""
    served_until = trained + dt.timedelta(days=1)
    return (model, status, "implicit", trained_at(trained), trained, served_until, *numbers)


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
GENRE_PLAYS = {"pop": [500, 520, 480, 600], "rock": [300, 380, 370, 400], "jazz": [100] * 4}
# landing day -> quarantined lines per reason
QUARANTINED = dict(zip(DAYS, [(100, 40), (80, 60), (120, 20), (90, 30)], strict=True))
REASONS = ("malformed_json", "unknown_user_id")
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
        "retention_rate double precision, is_complete_week boolean",
        [
            (dt.date(2026, 10, 19), 1, 40, 20, 0.5, False),
            (dt.date(2026, 10, 19), 2, 40, 10, 0.25, False),
            (dt.date(2026, 10, 26), 0, 50, 40, 0.8, False),
            (dt.date(2026, 10, 26), 1, 50, 30, 0.6, False),
            (dt.date(2026, 11, 2), 0, 30, 27, 0.9, False),
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
        "catalog_coverage double precision, user_coverage double precision",
        [
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
        ],
    ),
    "mart_data_quality": Table(
        "landing_date date, reason text, quarantined_records bigint, input_records bigint, "
        "quarantine_rate double precision, day_quarantined_records bigint, "
        "day_quarantine_rate double precision, ingest_run_id text, run_status text",
        [
            quality_row(day, reason, count)
            for day, counts in QUARANTINED.items()
            for reason, count in zip(REASONS, counts, strict=True)
        ],
    ),
}


def fill_warehouse(settings: Settings) -> None:
    """Create the marts the dashboards read, with the rows above."""
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute("create schema if not exists marts")
        for name, table in WAREHOUSE.items():
            conn.execute(f"create table marts.{name} ({table.columns})")
            placeholders = ", ".join(["%s"] * len(table.names))
            with conn.cursor() as cursor:
                cursor.executemany(f"insert into marts.{name} values ({placeholders})", table.rows)


def test_hand_made_marts_match_the_dbt_project() -> None:
    """Every column the test creates (so every column the dashboards read) is one the dbt project
    documents for that model: renaming a mart's column breaks this test, not the dashboards."""
    documented: dict[str, set[str]] = {}
    for schema_file in (REPO / "dbt" / "models" / "marts").rglob("*.yml"):
        for model in yaml.safe_load(schema_file.read_text()).get("models", []):
            documented[model["name"]] = {column["name"] for column in model.get("columns", [])}
    for name, table in WAREHOUSE.items():
        assert name in documented, f"dbt has no model {name}"
        assert set(table.names) <= documented[name], (name, set(table.names) - documented[name])


# --- the browser side ----------------------------------------------------------------------

# The title, traces and drawn marks of every Plotly chart on the page, from Plotly's own objects.
READ_CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(chart => ({
    title: chart._fullLayout.title.text.replace(/<[^>]+>/g, ''),  // Streamlit adds <b> tags
    traces: chart._fullData.map(trace => ({
        name: trace.name,
        type: trace.type,
        x: trace.x ? Array.from(trace.x) : null,
        y: trace.y ? Array.from(trace.y) : null,
        z: trace.z ? Array.from(trace.z, row => Array.from(row)) : null,
    })),
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


@pytest.fixture(scope="module")
def server(isolated_platform, env_for, tmp_path_factory) -> Iterator[Server]:
    """`audotics dashboards` on a database of its own, starting (not yet answering)."""
    platform = isolated_platform("dashboards")
    port = free_port()
    log = tmp_path_factory.mktemp("dashboards") / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "audotics"), "dashboards", "--port", str(port)],
            env=env_for(platform), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield Server(platform, f"http://127.0.0.1:{port}", process, log)
    process.terminate()
    process.wait(timeout=20)


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
    "Top 10 playlists by plays",
}
RECOMMENDATION_CHARTS = {
    "Recommendation-context plays per model version",
    "Coverage per model version",
    "Offline metrics per model version",
    "Lift over the popularity baseline",
}


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
    assert heatmap["x"] == ["week 0", "week 1", "week 2"]
    assert heatmap["y"] == ["19 Oct 2026 (n=40)", "26 Oct 2026 (n=50)", "02 Nov 2026 (n=30)"]
    assert [[None if rate != rate else rate for rate in row] for row in heatmap["z"]] == [
        [None, 0.5, 0.25],  # NaN != NaN: a week before the history or after today
        [0.8, 0.6, None],
        [0.9, None, None],
    ]
    assert charts["Weekly retention by signup cohort"]["heatmap_images"] == 1

    ((playlist_plays, playlists),) = [
        (trace["x"], trace["y"]) for trace in charts["Top 10 playlists by plays"]["traces"]
    ]
    assert playlists == ["Morning run (alice)", "Focus (bob)", "Morning run (bob)"]
    assert playlist_plays == [25, 18, 7]  # the unplayed playlist is left out


def test_recommendations_plot_each_model_version(dashboards: Dashboards) -> None:
    open_dashboard(dashboards.page, "Recommendations")
    assert dashboards.page.url.endswith("/recommendations")
    charts = charts_of(dashboards.page, RECOMMENDATION_CHARTS)
    online = series(charts["Recommendation-context plays per model version"])
    assert online == {
        "share of all plays": (MODELS, [0.12, 0.15]),  # oldest model first
        "played through": (MODELS, [0.55, 0.61]),
        "skipped": (MODELS, [0.30, 0.24]),
    }
    assert charts["Recommendation-context plays per model version"]["bars"] == 6
    assert series(charts["Coverage per model version"]) == {
        "catalog coverage": (MODELS, [0.20, 0.25]),
        "user coverage": (MODELS, [0.90, 0.95]),
    }
    metrics = ["ndcg@10", "recall@10"]
    assert series(charts["Offline metrics per model version"]) == {
        MODELS[0]: (metrics, [0.09, 0.12]),
        MODELS[1]: (metrics, [0.12, 0.15]),
    }
    assert series(charts["Lift over the popularity baseline"]) == {
        MODELS[0]: (metrics, [0.5, 0.2]),
        MODELS[1]: (metrics, [1.0, 0.5]),
    }


def test_data_quality_plots_quarantine_per_day_and_reason(dashboards: Dashboards) -> None:
    page = dashboards.page
    open_dashboard(page, "Data quality")
    assert page.url.endswith("/data_quality")
    charts = charts_of(page, {"Quarantine rate per landing day", "Quarantine rate per reason"})
    days = iso(DAYS)
    ((by_day_x, by_day_y),) = series(charts["Quarantine rate per landing day"]).values()
    assert by_day_x == days
    assert by_day_y == pytest.approx([0.0065, 0.0065, 0.0065, 0.0055])
    by_reason = series(charts["Quarantine rate per reason"])
    assert by_reason.keys() == {"malformed_json", "unknown_user_id"}
    assert by_reason["malformed_json"][1] == pytest.approx([0.005, 0.004, 0.006, 0.0045])
    assert by_reason["unknown_user_id"][1] == pytest.approx([0.002, 0.003, 0.001, 0.0015])
    assert charts["Quarantine rate per reason"]["markers"] == 2 * len(days)
    assert "No successful ingestion run for 04 Nov 2026" in page.inner_text("body")
