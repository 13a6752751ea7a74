"""Loading lake tables into the warehouse's schema raw: incremental by partition or Delta version,
idempotent, type-faithful. Also home of the small hand-checked world the warehouse tests share
(`write_world`, `write_second_batch`): every lake table the warehouse reads, per the contracts."""

from __future__ import annotations

import datetime as dt

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from psycopg import sql

from audotics import lake
from audotics.db import libpq_url
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings
from warehouse.erasure import erase_user
from warehouse.errors import WarehouseError
from warehouse.load import SOURCES, LakeSource, load_warehouse
from warehouse.postgres_copy import copy_batches, postgres_type

UTC = dt.UTC


def at(day: int, hour: int = 12, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


def uid(kind: str, n: int) -> str:
    """Readable UUIDs that sort in n order: user 1 = 00000000-0000-4000-8000-000000000u01."""
    return f"00000000-0000-4000-8000-000000000{kind}{n:02d}"


U = {n: uid("1", n) for n in range(1, 6)}  # users
A = {n: uid("2", n) for n in range(1, 3)}  # artists
T = {n: uid("3", n) for n in range(1, 4)}  # tracks
P = {n: uid("4", n) for n in range(1, 3)}  # playlists
LOADED = at(11, 0, month=11)  # when the fixture's pipeline ran


def events(rows: list[tuple]) -> pa.Table:
    """rows: (n, type, user, track, ts, ms_played, context, playlist, model[, landing day])."""
    records = []
    for n, kind, user, track, ts, ms, context, playlist, model, *landing in rows:
        landing_day = dt.date(2026, 11, landing[0]) if landing else ts.date()
        records.append(
            {
                "event_id": uid("9", n), "event_type": kind, "user_id": U[user],
                "track_id": T[track], "ts": ts, "ms_played": ms, "context": context,
                "playlist_id": P[playlist] if playlist else None, "model_version": model,
                "device": "ios", "country": "DE", "ingested_at": LOADED,
                "run_id": f"run-{landing_day}", "landing_date": landing_day,
                "event_date": ts.date(),
            }
        )  # fmt: skip
    return pa.Table.from_pylist(records, tables.SILVER_EVENTS.schema)


# Day 1 (Mon 2026-11-02), day 2 (Tue 11-03) and day 3 (Mon 11-09): 13 events.
FIRST_EVENTS = [
    (1, "play", 1, 1, at(2, 9), 200_000, "playlist", 1, None),
    (2, "skip", 1, 2, at(2, 9), 10_000, "playlist", 1, None),
    (3, "play", 2, 1, at(2, 11), 190_000, "recommendation", None, "m1"),
    (4, "skip", 2, 3, at(2, 11), 5_000, "recommendation", None, "m1"),
    (5, "like", 3, 1, at(2, 12), 0, "search", None, None),
    (6, "play", 3, 3, at(2, 12), 240_000, "radio", None, None),
    (7, "play", 1, 3, at(3, 8), 240_000, "album", None, None),
    (8, "play", 4, 2, at(3, 15), 180_000, "recommendation", None, "m1"),
    (9, "playlist_add", 4, 2, at(3, 15), 0, "search", 1, None),
    (10, "play", 2, 1, at(3, 20), 100_000, "recommendation", None, "m1"),
    (11, "play", 2, 2, at(9, 10), 180_000, "recommendation", None, "m2"),
    (12, "skip", 3, 1, at(9, 11), 3_000, "search", None, None),
    (13, "play", 1, 1, at(9, 12), 200_000, "playlist", 1, None),
]
# The next night: day 4 (11-10) and an event of day 2 that arrived late (on 11-10).
SECOND_EVENTS = [
    (14, "play", 5, 3, at(10, 9), 240_000, "search", None, None),
    (15, "skip", 2, 2, at(10, 10), 2_000, "recommendation", None, "m2"),
    (16, "play", 3, 2, at(3, 22), 180_000, "search", None, None, 10),
]


def current(created: dt.datetime, **columns) -> dict:
    return {**columns, "created_at": created, "updated_at": created, "valid_from": created,
            "valid_to": None, "is_current": True}  # fmt: skip


def user(n: int, signed_up: dt.datetime, subscription: str = "free") -> dict:
    return current(signed_up, user_id=U[n], username=f"user{n}", email=f"u{n}@example.org",
                   country="DE", birth_year=1990 + n, subscription=subscription)  # fmt: skip


def track(n: int, artist: int, genre: str, duration_ms: int, title: str | None = None) -> dict:
    return current(
        at(1, month=1), track_id=T[n], title=title or f"Track {n}", artist_id=A[artist],
        album="Album", genre=genre, duration_ms=duration_ms, release_date=dt.date(2025, 1, 1),
        danceability=0.5, energy=0.5, valence=0.5, tempo=120.0, acousticness=0.1,
        instrumentalness=0.0, loudness=-7.5,
    )  # fmt: skip


def superseded(row: dict, until: dt.datetime) -> dict:
    return {**row, "valid_to": until, "is_current": False}


def later_version(row: dict, changed: dt.datetime, **changes) -> dict:
    return {**row, **changes, "updated_at": changed, "valid_from": changed}


def run(run_id: str, day: int, input_records: int, quarantined: int, status: str,
        finished_hour: int) -> dict:  # fmt: skip
    start = at(day, 0)
    return {
        "run_id": run_id, "interval_start": start, "interval_end": start + dt.timedelta(days=1),
        "input_records": input_records, "bronze_rows": input_records,
        "silver_rows": input_records - quarantined, "quarantine_rows": quarantined,
        "duplicate_rows": 0, "unknown_fields": "{}", "started_at": at(day + 1, finished_hour - 1),
        "finished_at": at(day + 1, finished_hour), "status": status,
    }  # fmt: skip


def quarantined(line: int, day: int, reasons: list[str]) -> dict:
    return {"source_file": f"events-2026-11-{day:02d}T09.jsonl.gz", "line_number": line,
            "raw": '{"event_id": "x", "note": "a \\"quoted\\" line, with a comma"}',
            "reasons": reasons, "run_id": f"run-{day}", "quarantined_at": at(day + 1, 1),
            "landing_date": dt.date(2026, 11, day)}  # fmt: skip


def recommendation(model: str, user_n: int, rank: int, track_n: int, source: str) -> dict:
    return {"model_version": model, "user_id": U[user_n], "rank": rank, "track_id": T[track_n],
            "score": 1.0 / rank, "source": source}  # fmt: skip


def registry_row(version: str, status: str, metrics: str, baseline: str) -> dict:
    return {"model_version": version, "engine": "implicit", "params": '{"factors": 16}',
            "data_as_of": dt.date(2026, 11, 1), "data_version": 3, "metrics": metrics,
            "baseline_metrics": baseline, "status": status, "reason": "fixture",
            "created_at": at(2, 3), "status_changed_at": at(2, 4)}  # fmt: skip


def write_world(settings: Settings) -> None:
    """The first night's lake: 5 users, 2 artists, 3 tracks, 2 playlists, 13 events, ..."""
    u3 = user(3, at(2, 10))
    t3 = track(3, 2, "rock", 240_000, title="Old title")
    p1_t3 = current(at(2, 1), playlist_id=P[1], track_id=T[3], position=3, added_at=at(2, 1))
    rows_by_table = {
        tables.SILVER_USERS: [
            user(1, at(28, 9, month=10)), user(2, at(2, 8)), superseded(u3, at(5)),
            later_version(u3, at(5), subscription="premium"), user(4, at(3, 9)), user(5, at(9, 8)),
        ],
        tables.SILVER_ARTISTS: [
            current(at(1, month=1), artist_id=A[1], name="Artist One", country="SE", genre="pop"),
            current(at(1, month=1), artist_id=A[2], name="Artist Two", country="US",
                    genre="rock"),
        ],
        tables.SILVER_TRACKS: [
            track(1, 1, "pop", 200_000), track(2, 1, "pop", 180_000),
            superseded(t3, at(4)), later_version(t3, at(4), title="Track 3"),
        ],
        tables.SILVER_PLAYLISTS: [
            current(at(1), playlist_id=P[1], owner_user_id=U[1], name="Mix", is_public=True),
            current(at(2, 9), playlist_id=P[2], owner_user_id=U[2], name="Rock", is_public=False),
        ],
        tables.SILVER_PLAYLIST_TRACKS: [
            current(at(1), playlist_id=P[1], track_id=T[1], position=1, added_at=at(1)),
            current(at(1), playlist_id=P[1], track_id=T[2], position=2, added_at=at(1)),
            superseded(p1_t3, at(6)),
            current(at(2, 9), playlist_id=P[2], track_id=T[3], position=1, added_at=at(2, 9)),
        ],
        tables.INGEST_RUNS: [
            run("run-2", 2, 10, 2, "success", 1), run("run-3a", 3, 8, 5, "failed", 1),
            run("run-3", 3, 8, 1, "success", 2), run("run-9", 9, 4, 0, "success", 1),
        ],
        tables.MODEL_REGISTRY: [
            registry_row("m1", "published", '{"ndcg@10": 0.2, "precision@10": 0.1}',
                         '{"ndcg@10": 0.1, "precision@10": 0.08}'),
            registry_row("m2", "candidate", '{"ndcg@10": 0.25, "recall@10": 0.3}',
                         '{"ndcg@10": 0.1}'),
        ],
        tables.QUARANTINE_EVENTS: [
            quarantined(1, 2, ["malformed_json"]),
            quarantined(7, 2, ["unknown_user_id", "ts_in_future"]),
            quarantined(3, 3, ["unknown_user_id"]),
        ],
        tables.RECOMMENDATIONS: [
            recommendation("m1", 1, 1, 2, "model"), recommendation("m1", 1, 2, 3, "model"),
            recommendation("m1", 2, 1, 3, "model"), recommendation("m1", 2, 2, 2, "model"),
            recommendation("m2", 1, 1, 1, "model"), recommendation("m2", 4, 1, 1, "fallback"),
        ],
    }  # fmt: skip
    for table, rows in rows_by_table.items():
        lake.write_arrow(
            settings, table, pa.Table.from_pylist(rows, table.schema), mode="overwrite"
        )
    lake.write_arrow(settings, tables.SILVER_EVENTS, events(FIRST_EVENTS))


def write_second_batch(settings: Settings) -> None:
    """The next night: events of day 4 plus a late event of day 2, appended in one commit."""
    lake.write_arrow(settings, tables.SILVER_EVENTS, events(SECOND_EVENTS))


def fetch(settings: Settings, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(libpq_url(settings)) as conn:
        return conn.execute(query, params).fetchall()


def column_types(settings: Settings, table: str) -> dict[str, str]:
    return dict(
        fetch(
            settings,
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = %s::regclass and attnum > 0 and not attisdropped",
            (table,),
        )
    )


# --- the loader ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(isolated_platform) -> Settings:
    settings = isolated_platform("warehouse_load")
    write_world(settings)
    return settings


def test_first_load_copies_every_table_faithfully(warehouse: Settings) -> None:
    report = load_warehouse(warehouse)

    rows = {t.source.raw_table: (t.mode, t.rows_loaded) for t in report.tables}
    assert rows == {
        "events": ("partitions", 13), "users": ("replaced", 6), "tracks": ("replaced", 4),
        "artists": ("replaced", 2), "playlists": ("replaced", 2),
        "playlist_tracks": ("replaced", 4), "quarantine_events": ("partitions", 3),
        "ingest_runs": ("replaced", 4), "model_registry": ("replaced", 2),
        "recommendations": ("partitions", 6),
        "gdpr_requests": ("replaced", 0),  # no erasure yet: empty, of the catalog's schema
        "experiments": ("replaced", 0),  # no experiment yet: likewise
    }  # fmt: skip
    assert report.table("events").partitions_loaded == ("2026-11-02", "2026-11-03", "2026-11-09")
    # Types follow the lake: timestamptz, date, bigint, text[] ... and values survive the CSV.
    assert fetch(
        warehouse,
        "select ts, event_date, ms_played, playlist_id, model_version from raw.events "
        "where event_id = %s",
        (uid("9", 3),),
    ) == [(at(2, 11), dt.date(2026, 11, 2), 190_000, None, "m1")]
    assert fetch(
        warehouse,
        "select reasons, raw from raw.quarantine_events where line_number = 7",
    ) == [
        (
            ["unknown_user_id", "ts_in_future"],
            '{"event_id": "x", "note": "a \\"quoted\\" line, with a comma"}',
        )
    ]
    assert fetch(
        warehouse, "select rank, score from raw.recommendations order by rank desc limit 1"
    ) == [(2, 0.5)]
    types = column_types(warehouse, "raw.quarantine_events")
    assert (types["reasons"], types["_loaded_at"]) == ("text[]", "timestamp with time zone")
    assert column_types(warehouse, "raw.gdpr_requests")["steps_done"] == "text[]"
    state = fetch(warehouse, "select table_name, delta_version from raw._load_state order by 1")
    assert len(state) == len(SOURCES) and dict(state)["events"] == 0


def test_second_load_without_lake_changes_copies_nothing(warehouse: Settings) -> None:
    before = fetch(warehouse, "select max(_loaded_at) from raw.events")
    report = load_warehouse(warehouse)
    assert {t.mode for t in report.tables} == {"unchanged"}
    assert report.rows_loaded == 0
    assert fetch(warehouse, "select max(_loaded_at) from raw.events") == before


def test_changed_partitions_alone_are_reloaded(warehouse: Settings) -> None:
    loaded_before = dict(
        fetch(warehouse, "select event_date, max(_loaded_at) from raw.events group by 1")
    )
    write_second_batch(warehouse)
    report = load_warehouse(warehouse)

    events_load = report.table("events")
    assert (events_load.mode, events_load.previous_version, events_load.delta_version) == (
        "partitions",
        0,
        1,
    )
    assert events_load.partitions_loaded == ("2026-11-03", "2026-11-10")
    assert events_load.rows_loaded == 5 + 2  # day 2 now has 5 events, day 4 has 2
    assert report.rows_loaded == 7  # every other table is unchanged
    loaded_after = dict(
        fetch(warehouse, "select event_date, max(_loaded_at) from raw.events group by 1")
    )
    untouched = [dt.date(2026, 11, 2), dt.date(2026, 11, 9)]
    assert [loaded_after[d] for d in untouched] == [loaded_before[d] for d in untouched]
    assert loaded_after[dt.date(2026, 11, 3)] > loaded_before[dt.date(2026, 11, 3)]
    assert fetch(warehouse, "select count(*), count(distinct event_id) from raw.events") == [
        (16, 16)
    ]


def test_a_delete_in_the_lake_reloads_its_partition(warehouse: Settings) -> None:
    # delta-rs rewrites the partition's file (with string_view columns) without the row.
    lake.delete_rows(warehouse, tables.SILVER_EVENTS, f"event_id = '{uid('9', 12)}'")
    report = load_warehouse(warehouse)
    assert report.table("events").partitions_loaded == ("2026-11-09",)
    assert report.rows_loaded == 2  # e11 and e13 remain on 11-09
    assert fetch(
        warehouse, "select count(*) from raw.events where event_id = %s", (uid("9", 12),)
    ) == [(0,)]
    assert column_types(warehouse, "raw.events")["event_id"] == "text"


def test_rewritten_dimension_is_replaced_and_a_vanished_partition_deleted(
    warehouse: Settings,
) -> None:
    artists = lake.read_arrow(warehouse, tables.SILVER_ARTISTS)
    lake.write_arrow(warehouse, tables.SILVER_ARTISTS, artists.slice(0, 1), mode="overwrite")
    recommendations = lake.read_arrow(warehouse, tables.RECOMMENDATIONS)
    lake.write_arrow(
        warehouse, tables.RECOMMENDATIONS, recommendations.filter(
            pc.equal(recommendations.column("model_version"), "m2")
        ), mode="overwrite",
    )  # fmt: skip

    report = load_warehouse(warehouse)
    assert (report.table("artists").mode, report.table("artists").rows_loaded) == ("replaced", 1)
    recs = report.table("recommendations")
    assert (recs.partitions_loaded, recs.partitions_removed) == (("m2",), ("m1",))
    assert fetch(
        warehouse, "select model_version, count(*) from raw.recommendations group by 1"
    ) == [("m2", 2)]
    assert fetch(warehouse, "select count(*) from raw.artists") == [(1,)]


def test_additive_schema_change_adds_the_column_and_a_type_change_is_refused(
    warehouse: Settings,
) -> None:
    registry = lake.read_arrow(warehouse, tables.MODEL_REGISTRY)
    with_column = registry.append_column("owner", pa.array(["ml", "ml"]))
    lake.write_arrow(
        warehouse, tables.MODEL_REGISTRY, with_column, mode="overwrite", schema_mode="overwrite"
    )
    load_warehouse(warehouse)
    assert fetch(warehouse, "select distinct owner from raw.model_registry") == [("ml",)]

    retyped = with_column.set_column(
        with_column.schema.get_field_index("data_version"),
        "data_version",
        pa.array(["3", "3"]),
    )
    lake.write_arrow(
        warehouse, tables.MODEL_REGISTRY, retyped, mode="overwrite", schema_mode="overwrite"
    )
    with pytest.raises(WarehouseError, match=r"raw\.model_registry\.data_version is bigint"):
        load_warehouse(warehouse)

    report = load_warehouse(warehouse, full_refresh=True)  # the documented way out
    assert report.table("model_registry").rows_loaded == 2
    assert column_types(warehouse, "raw.model_registry")["data_version"] == "text"


def test_missing_lake_table_names_the_table(warehouse: Settings) -> None:
    nothing = Table("scratch", "nothing", "test table", None)
    with pytest.raises(lake.LakeError, match="scratch/nothing not found"):
        load_warehouse(warehouse, sources=[LakeSource(nothing, "nothing")])


def test_unsupported_arrow_types_are_named() -> None:
    assert postgres_type(pa.list_(pa.float32()), "c") == "real[]"
    assert postgres_type(pa.dictionary(pa.int32(), pa.string()), "c") == "text"
    with pytest.raises(WarehouseError, match=r"column gold/x\.s: Arrow type struct"):
        postgres_type(pa.struct([("a", pa.int64())]), "gold/x.s")


def test_copy_writes_array_literals_with_nulls_and_escapes(warehouse: Settings) -> None:
    values = [['a"b', "c\\d", "", None], [], None]
    batch = pa.record_batch([pa.array(values, pa.list_(pa.string()))], names=["v"])
    with psycopg.connect(libpq_url(warehouse)) as conn:
        conn.execute("create schema if not exists raw")
        conn.execute("create table raw.arrays (v text[])")
        assert copy_batches(conn, sql.Identifier("raw", "arrays"), ["v"], [batch]) == 3
        assert [r[0] for r in conn.execute("select v from raw.arrays").fetchall()] == values
        conn.rollback()


def test_any_text_a_lake_row_holds_is_loaded(warehouse: Settings) -> None:
    """A NUL or invalid UTF-8 in a lake string (written by any tool, straight to the table)
    neither fails nor rolls back the load: it arrives as U+FFFD, everything else exact."""
    lines = [b"nul \x00 inside", b"invalid \xff\xfe utf-8", b"\xc3", b"fine \xc3\xa9"]
    rows = [quarantined(40 + n, 9, ["malformed_json"]) for n in range(len(lines))]
    table = pa.Table.from_pylist(rows, tables.QUARANTINE_EVENTS.schema)
    raw = pa.array(lines, pa.binary()).view(pa.string())  # no validation: the bytes as they are
    table = table.set_column(table.schema.get_field_index("raw"), "raw", raw)
    day = "landing_date = '2026-11-09'"
    before = lake.read_arrow(warehouse, tables.QUARANTINE_EVENTS, filter=pc.field("landing_date")
                             == dt.date(2026, 11, 9))  # fmt: skip
    lake.write_arrow(warehouse, tables.QUARANTINE_EVENTS, table)

    report = load_warehouse(warehouse)

    assert report.table("quarantine_events").partitions_loaded == ("2026-11-09",)
    loaded = fetch(
        warehouse,
        "select raw from raw.quarantine_events where line_number >= 40 order by line_number",
    )
    assert [r for (r,) in loaded] == ["nul \ufffd inside", "invalid \ufffd\ufffd utf-8", "\ufffd",
                                      "fine \u00e9"]  # fmt: skip
    # (delta-rs cannot rewrite such a file: DELETE refuses to read it. The day is replaced.)
    lake.write_arrow(warehouse, tables.QUARANTINE_EVENTS, before, mode="overwrite", predicate=day)
    load_warehouse(warehouse)


def test_erasure_removes_the_user_from_raw_and_nobody_else(warehouse: Settings) -> None:
    """GDPR: every row with the user in a user column, and every quarantined line mentioning
    the user, leave the warehouse; all other rows stay."""
    load_warehouse(warehouse)
    line = f'{{"event_id": "y", "user_id": "{U[1]}", "ts": "2099-01-01T00:00:00Z"}}'
    with psycopg.connect(libpq_url(warehouse)) as conn:
        conn.execute(
            "insert into raw.quarantine_events (source_file, line_number, raw, reasons, run_id, "
            "quarantined_at, landing_date) values ('f', 99, %s, '{ts_in_future}', 'r', now(), "
            "'2026-11-02')",
            (line,),
        )

    def holding(user_id: str) -> dict[str, int]:
        counts = {
            f"{table}.{column}": fetch(
                warehouse, f"select count(*) from raw.{table} where {column} = %s", (user_id,)
            )[0][0]
            for table, column in [("events", "user_id"), ("users", "user_id"),
                                  ("playlists", "owner_user_id"), ("recommendations", "user_id")]
        }  # fmt: skip
        counts["quarantine_events.raw"] = fetch(
            warehouse,
            "select count(*) from raw.quarantine_events where strpos(raw, %s) > 0",
            (user_id,),
        )[0][0]
        return counts

    erased, other = holding(U[1]), holding(U[2])
    assert all(erased.values()) and erased["quarantine_events.raw"] == 1

    assert erase_user(warehouse, U[1]) == sum(erased.values())
    assert set(holding(U[1]).values()) == {0}
    assert holding(U[2]) == other
    assert fetch(warehouse, "select count(*) from raw.quarantine_events") == [(3,)]
