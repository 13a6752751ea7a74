"""The dbt project on the hand-checked world of test_warehouse_load: `dbt build` passes, the marts
hold the numbers worked out by hand below, the docs catalog covers every column, source
freshness catches a stale table, and the incremental fact equals a full refresh.

dbt is slow to start, so the module builds once and the tests read the captured marts."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from audotics.db import libpq_url
from audotics.settings import Settings
from tests.warehouse.test_warehouse_load import P, T, U, fetch, write_second_batch, write_world
from warehouse.dbt import DbtInvocation, dbt_target_dir, run_dbt
from warehouse.errors import WarehouseError
from warehouse.load import load_warehouse

NOV = {day: dt.date(2026, 11, day) for day in range(1, 31)}
MARTS = {  # mart -> its grain, for a stable order
    "mart_daily_kpis": "kpi_date",
    "mart_retention_cohorts": "cohort_week, weeks_since_signup",
    "mart_recommendation_performance": "model_version",
    "mart_model_evaluations": "model_version, metric_name",
    "mart_data_quality": "landing_date, reason",
    "mart_top_tracks_daily": "event_date, daily_rank",
    "mart_genre_trends": "event_date, genre",
    "mart_playlist_engagement": "playlist_id",
    "dim_users": "user_id",
    "dim_tracks": "track_id",
    "dim_artists": "artist_id",
    "fct_daily_user_activity": "activity_date, user_id",
}


def rows(settings: Settings, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(libpq_url(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass
class Build:
    settings: Settings
    invocation: DbtInvocation
    marts: dict[str, list[dict[str, Any]]]

    def mart(self, name: str, *columns: str) -> list[tuple]:
        return [tuple(row[c] for c in columns) for row in self.marts[name]]


@pytest.fixture(scope="module")
def build(isolated_platform) -> Build:
    settings = isolated_platform("warehouse_dbt")
    write_world(settings)
    load_warehouse(settings)
    invocation = run_dbt(settings, ["build"])
    marts = {
        name: rows(settings, f"select * from marts.{name} order by {grain}")
        for name, grain in MARTS.items()
    }
    return Build(settings, invocation, marts)


def test_build_runs_every_model_and_test(build: Build) -> None:
    results = build.invocation.by_name()
    problems = [n for n, r in results.items() if r["status"] not in ("success", "pass", "no-op")]
    assert problems == []  # no error, failure or warning (exposures are no-ops)
    models = {name for name, r in results.items() if r["unique_id"].startswith("model.")}
    assert {
        "stg_events", "stg_users", "stg_tracks", "stg_artists", "stg_playlists",
        "stg_playlist_tracks", "stg_quarantine_events", "stg_ingest_runs",
        "stg_model_registry", "stg_recommendations", "fct_listening_events",
        "fct_daily_user_activity", "dim_users", "dim_tracks", "dim_artists", *MARTS,
    } <= models  # fmt: skip
    tests = [r for r in results.values() if r["unique_id"].startswith("test.")]
    assert len(tests) > 100
    for singular in ("assert_dau_never_above_mau", "assert_no_event_before_user_signup"):
        assert results[singular]["status"] == "pass"


def test_daily_kpis(build: Build) -> None:
    columns = ("kpi_date", "daily_active_users", "weekly_active_users", "monthly_active_users",
               "plays", "skips", "skip_rate", "new_users")  # fmt: skip
    kpis = build.mart("mart_daily_kpis", *columns)
    # Mon 11-02: users 1, 2, 3; plays e1 e3 e6, skips e2 e4; users 2 and 3 signed up.
    # Tue 11-03: users 1, 4, 2; plays e7 e8 e10; user 4 signed up. WAU/MAU add user 4.
    # 11-04..11-08 have no events but keep their row; Mon 11-09: users 2, 3, 1; e11 e13 / e12.
    assert kpis == [
        (NOV[2], 3, 3, 3, 3, 2, 0.4, 2),
        (NOV[3], 3, 4, 4, 3, 0, 0.0, 1),
        *[(NOV[d], 0, 4, 4, 0, 0, None, 0) for d in range(4, 9)],
        (NOV[9], 3, 4, 4, 2, 1, pytest.approx(1 / 3), 1),
    ]
    hours = dict(build.mart("mart_daily_kpis", "kpi_date", "listening_hours"))
    assert hours[NOV[2]] == pytest.approx((200_000 + 10_000 + 190_000 + 5_000 + 240_000) / 3.6e6)
    assert hours[NOV[3]] == pytest.approx((240_000 + 180_000 + 100_000) / 3.6e6)


def test_retention_cohorts(build: Build) -> None:
    retention = build.mart(
        "mart_retention_cohorts",
        "cohort_week", "weeks_since_signup", "cohort_size", "active_users", "retention_rate",
        "is_complete_week",
    )  # fmt: skip
    # Cohorts by signup week (Monday): 10-26 = {u1}; 11-02 = {u2, u3, u4}; 11-09 = {u5}.
    # Observed weeks: 11-02 (complete) and 11-09 (only its Monday).
    assert retention == [
        (dt.date(2026, 10, 26), 1, 1, 1, 1.0, True),
        (dt.date(2026, 10, 26), 2, 1, 1, 1.0, False),
        (NOV[2], 0, 3, 3, 1.0, True),
        (NOV[2], 1, 3, 2, pytest.approx(2 / 3), False),  # u2 and u3 came back, u4 did not
        (NOV[9], 0, 1, 0, 0.0, False),  # u5 signed up and stayed silent
    ]


def test_recommendation_performance(build: Build) -> None:
    performance = build.mart(
        "mart_recommendation_performance",
        "model_version", "recommended_plays", "plays_on_serving_days", "recommended_play_share",
        "recommended_starts", "skip_rate", "play_through_rate", "recommendations",
        "fallback_recommendations", "catalog_coverage", "user_coverage",
    )  # fmt: skip
    # m1 served on 11-02 and 11-03 (6 plays): e3 play (190 of 200 s: played through), e4 skip,
    # e8 play (180 of 180 s: through), e10 play (100 of 200 s: not through).
    # m2 served on 11-09 (2 plays): e11 play through. Catalog: 3 tracks, 5 users.
    assert performance == [
        ("m1", 3, 6, 0.5, 4, 0.25, 0.5, 4, 0, pytest.approx(2 / 3), 0.4),
        ("m2", 1, 2, 0.5, 1, 0.0, 1.0, 2, 1, pytest.approx(1 / 3), 0.4),
    ]


def test_model_evaluations(build: Build) -> None:
    evaluations = build.mart(
        "mart_model_evaluations",
        "model_version", "metric_name", "metric_value", "baseline_value", "lift", "is_published",
    )  # fmt: skip
    assert evaluations == [
        ("m1", "ndcg@10", 0.2, 0.1, pytest.approx(0.1), True),
        ("m1", "precision@10", 0.1, 0.08, pytest.approx(0.02), True),
        ("m2", "ndcg@10", 0.25, 0.1, pytest.approx(0.15), False),
        ("m2", "recall@10", 0.3, None, None, False),  # no baseline value: no lift
    ]


def test_data_quality(build: Build) -> None:
    quality = build.mart(
        "mart_data_quality",
        "landing_date", "reason", "quarantined_records", "input_records", "quarantine_rate",
        "day_quarantine_rate", "ingest_run_id",
    )  # fmt: skip
    # 11-03 was ingested twice: the failed run-3a is superseded by run-3.
    assert quality == [
        (NOV[2], "malformed_json", 1, 10, 0.1, 0.2, "run-2"),
        (NOV[2], "ts_in_future", 1, 10, 0.1, 0.2, "run-2"),
        (NOV[2], "unknown_user_id", 1, 10, 0.1, 0.2, "run-2"),
        (NOV[3], "malformed_json", 0, 8, 0.0, 0.125, "run-3"),
        (NOV[3], "ts_in_future", 0, 8, 0.0, 0.125, "run-3"),
        (NOV[3], "unknown_user_id", 1, 8, 0.125, 0.125, "run-3"),
        *[(NOV[9], r, 0, 4, 0.0, 0.0, "run-9")
          for r in ("malformed_json", "ts_in_future", "unknown_user_id")],
    ]  # fmt: skip


def test_top_tracks_and_genre_trends(build: Build) -> None:
    top = build.mart(
        "mart_top_tracks_daily", "event_date", "daily_rank", "track_id", "plays", "skip_rate"
    )
    assert top == [
        (NOV[2], 1, T[1], 2, 0.0),
        (NOV[2], 2, T[3], 1, 0.5),  # t2 was only skipped on 11-02: not ranked
        (NOV[3], 1, T[1], 1, 0.0),  # a three-way tie, broken by track_id
        (NOV[3], 2, T[2], 1, 0.0),
        (NOV[3], 3, T[3], 1, 0.0),
        (NOV[9], 1, T[1], 1, 0.5),  # e13 played it, e12 skipped it
        (NOV[9], 2, T[2], 1, 0.0),
    ]
    genres = build.mart(
        "mart_genre_trends", "event_date", "genre", "plays", "play_share", "plays_7d"
    )
    assert len(genres) == 8 * 12  # every day of the spine x every genre
    on = {(d, g): (plays, share, week) for d, g, plays, share, week in genres}
    assert on[(NOV[2], "pop")] == (2, pytest.approx(2 / 3), 2)
    assert on[(NOV[2], "rock")] == (1, pytest.approx(1 / 3), 1)
    assert on[(NOV[2], "jazz")] == (0, 0.0, 0)
    assert on[(NOV[3], "pop")] == (2, pytest.approx(2 / 3), 4)  # e8 (t2) and e10 (t1)
    assert on[(NOV[4], "pop")] == (0, None, 4)  # no plays that day; the week still has 4
    assert on[(NOV[9], "pop")] == (2, 1.0, 4)  # 11-03..11-09: two on 11-03, two on 11-09


def test_dimensions_and_playlists(build: Build) -> None:
    users = build.mart(
        "dim_users", "user_id", "subscription", "signup_week", "active_days", "lifetime_plays"
    )
    assert users == [
        (U[1], "free", dt.date(2026, 10, 26), 3, 3),
        (U[2], "free", NOV[2], 3, 3),  # e3, e10, e11 (e4 was a skip)
        (U[3], "premium", NOV[2], 2, 1),  # the latest of two versions
        (U[4], "free", NOV[2], 1, 1),
        (U[5], "free", NOV[9], 0, 0),
    ]
    assert "email" not in build.marts["dim_users"][0]
    assert build.mart("dim_tracks", "title", "artist_name", "genre") == [
        ("Track 1", "Artist One", "pop"),
        ("Track 2", "Artist One", "pop"),
        ("Track 3", "Artist Two", "rock"),
    ]
    assert build.mart("dim_artists", "artist_name", "track_count") == [
        ("Artist One", 2),
        ("Artist Two", 1),
    ]
    assert build.mart(
        "mart_playlist_engagement", "playlist_id", "track_count", "plays", "skips", "tracks_added"
    ) == [(P[1], 2, 2, 1, 1), (P[2], 1, 0, 0, 0)]
    assert len(build.marts["fct_daily_user_activity"]) == 9


def test_docs_catalog_describes_every_model_and_column(build: Build) -> None:
    run_dbt(build.settings, ["docs", "generate"])
    target = dbt_target_dir(build.settings)
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())

    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    assert set(catalog["nodes"]) == set(models)  # every model is in the catalog
    undocumented = [
        f"{node['name']}.{column}"
        for unique_id, node in models.items()
        for column in catalog["nodes"][unique_id]["columns"]
        if not node["columns"].get(column, {}).get("description")
    ]
    assert undocumented == []
    assert all(node["description"] for node in models.values())
    # Lineage: the KPI mart depends on the activity fact, which depends on the event fact.
    assert manifest["parent_map"]["model.audotics.fct_daily_user_activity"] == [
        "model.audotics.fct_listening_events"
    ]
    assert {e["name"] for e in manifest["exposures"].values()} >= {
        "listening_dashboard",
        "read_api",
    }
    assert (target / "index.html").exists()


def test_source_freshness_flags_a_stale_table(build: Build) -> None:
    with psycopg.connect(libpq_url(build.settings)) as conn:
        conn.execute("update raw.ingest_runs set _loaded_at = now() - interval '3 days'")
    try:
        with pytest.raises(WarehouseError, match=r"source\.audotics\.lake\.ingest_runs error"):
            run_dbt(build.settings, ["source", "freshness"])
    finally:
        with psycopg.connect(libpq_url(build.settings)) as conn:
            conn.execute("update raw.ingest_runs set _loaded_at = now()")
    freshness = {
        r["unique_id"].rsplit(".", 1)[1]: r["status"]
        for r in json.loads((dbt_target_dir(build.settings) / "sources.json").read_text())[
            "results"
        ]
    }
    assert freshness.pop("ingest_runs") == "error"
    assert set(freshness.values()) == {"pass"}  # just loaded: every other source is fresh


def test_incremental_run_adds_only_new_partitions_and_equals_full_refresh(build: Build) -> None:
    settings = build.settings
    xmin_before = dict(
        fetch(
            settings,
            "select event_id, xmin::text from marts.fct_listening_events "
            "where event_date in ('2026-11-02', '2026-11-09')",
        )
    )
    write_second_batch(settings)  # day 4 (11-10) and a late event of 11-03
    report = load_warehouse(settings)
    assert report.table("events").partitions_loaded == ("2026-11-03", "2026-11-10")

    incremental = run_dbt(settings, ["build"]).by_name()["fct_listening_events"]
    assert incremental["adapter_response"]["rows_affected"] == 7  # 11-03 (5) and 11-10 (2)
    xmin_after = dict(
        fetch(
            settings,
            "select event_id, xmin::text from marts.fct_listening_events "
            "where event_date in ('2026-11-02', '2026-11-09')",
        )
    )
    assert xmin_after == xmin_before  # the other partitions' rows were not rewritten
    assert fetch(settings, "select count(*) from marts.fct_listening_events") == [(16,)]
    assert fetch(
        settings,
        "select kpi_date, daily_active_users from marts.mart_daily_kpis where kpi_date >= %s",
        (NOV[9],),
    ) == [(NOV[9], 3), (NOV[10], 2)]
    assert fetch(
        settings,
        "select daily_active_users, plays from marts.mart_daily_kpis where kpi_date = %s",
        (NOV[3],),
    ) == [(4, 4)]  # the late event of user 3 counts on the day it happened

    with psycopg.connect(libpq_url(settings)) as conn:
        conn.execute("create table public.fct_incremental as table marts.fct_listening_events")
    run_dbt(settings, ["run", "--full-refresh", "--select", "fct_listening_events"])
    difference = fetch(
        settings,
        "(table public.fct_incremental except table marts.fct_listening_events) union all "
        "(table marts.fct_listening_events except table public.fct_incremental)",
    )
    assert difference == []
