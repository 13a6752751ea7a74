"""Every rule of `ingestion.rules` on tiny batches through the DuckDB engine, with real values:
each reason, the lines that used to stop a day, duplicates, and the day's gates and report."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from audotics import lake
from audotics.lake import tables
from expectations import events as event_suites
from expectations.validation import QualityGateError, validate
from ingestion import rules
from ingestion.refine import refine_day
from tests.ingestion.refine_support import (
    DAY,
    DURATION_MS,
    FILE,
    GOOD,
    SIGNED_UP,
    land,
    line,
    run_engine,
    write_catalog,
)  # fmt: skip

SILVER = "silver"
UUID_2 = "0e1d7d1f-0000-4000-8000-000000000002"


@pytest.fixture
def lake_settings(make_settings, tmp_path):
    settings = make_settings(tmp_path)
    write_catalog(settings)
    return settings


def verdicts(settings, lines: list[bytes], **land_options) -> list[list[str] | str]:
    """Each line's reasons, or "silver", or "duplicate"."""
    land(settings, lines, **land_options)
    refined = run_engine(settings)
    reasons = refined.reasons()
    duplicates = {row["line_number"] for row in refined.duplicates.to_pylist()}
    kept = set(refined.candidates.column("line_number").to_pylist()) - duplicates
    assert len(reasons) + len(kept) + len(duplicates) == len(lines)
    return [
        reasons.get(n) or (SILVER if n in kept else "duplicate") for n in range(1, len(lines) + 1)
    ]


def verdict(settings, raw: bytes) -> list[str] | str:
    (only,) = verdicts(settings, [raw])
    return only


def test_structural_problems_are_reported_per_line_and_good_lines_are_typed(lake_settings):
    lines = [
        line(),
        b"{cut sho",
        b"[1, 2]",
        line(event_id=UUID_2, ms_played="1000"),
        line(event_id=UUID_2, ms_played=True),
        line(event_id=UUID_2, user_id="<drop>", track_id=7),
        line(event_id=UUID_2, ts="yesterday"),
        line(event_id="0e1d7d1f-0000-4000-8000-000000000008", lyrics=True, mood="happy"),
        line(event_id="0e1d7d1f-0000-4000-8000-000000000009", ts="2026-11-01T08:00:00"),
    ]  # the last one has no offset: taken as UTC
    land(lake_settings, lines)
    refined = run_engine(lake_settings)

    assert refined.reasons() == {
        2: ["malformed_json"],
        3: ["not_a_json_object"],
        4: ["wrong_type:ms_played"],
        5: ["wrong_type:ms_played"],
        6: ["missing_field:user_id", "wrong_type:track_id"],
        7: ["unreadable_ts"],
    }
    assert refined.counts.unknown_fields == {"lyrics": 1, "mood": 1}
    silver = refined.silver.sort_by("event_id")
    assert silver.column("event_id").to_pylist() == [
        "0e1d7d1f-0000-4000-8000-000000000008",
        "0e1d7d1f-0000-4000-8000-000000000009",
        GOOD["event_id"],
    ]
    assert silver.column("ts").to_pylist() == [
        dt.datetime(2026, 11, 1, 8, 0, 0, 500_000, tzinfo=dt.UTC),  # +02:00 converted to UTC
        dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 8, 0, 0, 500_000, tzinfo=dt.UTC),
    ]
    assert silver.schema == tables.SILVER_EVENTS.schema  # ts UTC microseconds, ms_played int64
    assert silver.column("event_date").to_pylist() == [DAY] * 3
    assert silver.column("ms_played").to_pylist() == [1000] * 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"event_type": "pause"}, ["unknown_event_type"]),
        ({"context": "tv"}, ["unknown_context"]),
        ({"context": None}, SILVER),
        ({"device": "fax"}, ["unknown_device"]),
        ({"device": "<drop>"}, SILVER),
        ({"experiment": "ab-1", "arm": "challenger"}, SILVER),  # an exposure
        ({"experiment": "ab-1"}, ["unpaired_experiment_arm"]),
        ({"arm": "control", "experiment": None}, ["unpaired_experiment_arm"]),
        ({"event_id": "e1"}, ["malformed_event_id"]),
        ({"event_id": GOOD["event_id"] + "\n"}, ["malformed_event_id"]),
        ({"event_id": GOOD["event_id"].upper()}, SILVER),
        ({"user_id": UUID_2}, ["unknown_user_id"]),  # its signup is unknown: not judged
        ({"track_id": UUID_2, "ms_played": 10**9}, ["unknown_track_id"]),
        ({"ts": "2019-12-31T23:59:59Z"}, [
            "ts_before_service_launch", "later_than_lateness_window", "event_before_user_signup"
        ]),
        ({"ts": "2026-11-01T11:10:00Z"}, SILVER),  # the file's hour end plus the clock skew
        ({"ts": "2026-11-01T11:10:00.000001Z"}, ["ts_in_future"]),
        ({"ts": "2026-10-29T00:00:00Z", "user_id": UUID_2}, ["unknown_user_id"]),
        ({"ts": "2026-10-28T23:59:59.999999Z", "user_id": UUID_2}, [
            "unknown_user_id", "later_than_lateness_window"
        ]),
        ({"ts": "2026-10-29T23:59:59Z"}, ["event_before_user_signup"]),
        ({"ts": SIGNED_UP.isoformat()}, SILVER),
        ({"ms_played": -1}, ["negative_ms_played"]),
        ({"ms_played": 0}, SILVER),
        ({"ms_played": DURATION_MS + rules.MS_PLAYED_SLACK}, SILVER),
        ({"ms_played": DURATION_MS + rules.MS_PLAYED_SLACK + 1}, [
            "ms_played_exceeds_track_duration"
        ]),
        ({"event_type": "seek", "context": "tv", "device": "fax", "ms_played": -5}, [
            "unknown_event_type", "unknown_context", "unknown_device", "negative_ms_played"
        ]),
    ],
)  # fmt: skip
def test_each_value_rule_gives_its_reason_and_only_it(lake_settings, changes, expected):
    assert verdict(lake_settings, line(**changes)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3000-01-01T00:00:00Z", ["ts_in_future"]),
        ("9999-12-31T23:59:59-01:00", ["ts_in_future"]),  # past year 9999 in UTC
        ("0001-01-01T00:00:00+01:00", [  # before year 1 in UTC
            "ts_before_service_launch", "later_than_lateness_window", "event_before_user_signup"
        ]),
        ("0001-01-01", [
            "ts_before_service_launch", "later_than_lateness_window", "event_before_user_signup"
        ]),
        ("0000-01-01T00:00:00Z", ["unreadable_ts"]),
        ("10000-01-01T00:00:00Z", ["unreadable_ts"]),
        ("2026-02-30T00:00:00Z", ["unreadable_ts"]),
        ("2026-11-01T24:00:00Z", ["unreadable_ts"]),
        ("2026-11-01T08:00:00+19:00", ["unreadable_ts"]),
        ("2026-11-01T08:00:00Z\n", ["unreadable_ts"]),
        ("infinity", ["unreadable_ts"]),
        ("epoch", ["unreadable_ts"]),
        ("2026-11-01 10:00:00 Europe/Stockholm", ["unreadable_ts"]),
        ("", ["unreadable_ts"]),
        (1793520000000, ["wrong_type:ts"]),  # epoch milliseconds
        ("2026-11-01", SILVER),
        ("2026-11-01T08:00", SILVER),
        ("2026-11-01 10:00:00+0200", SILVER),
        ("2026-11-01T10:00+02", SILVER),
        ("2026-11-01T08:00:00.123456789Z", SILVER),  # truncated to microseconds
    ],
)  # fmt: skip
def test_any_timestamp_gets_a_verdict_and_none_stops_the_day(lake_settings, value, expected):
    assert verdict(lake_settings, line(ts=value)) == expected


def test_accepted_timestamps_are_the_utc_instants_they_name(lake_settings):
    values = ["2026-11-01", "2026-11-01T10:00+02", "2026-11-01T08:00:00.123456789Z"]
    land(lake_settings, [line(event_id=f"{i}" + GOOD["event_id"][1:], ts=v) for i, v in
                         enumerate(values)])  # fmt: skip
    silver = run_engine(lake_settings).silver.sort_by("event_id")
    assert silver.column("ts").to_pylist() == [
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=dt.UTC),
    ]


@pytest.mark.parametrize(
    ("ms_played", "expected"),
    [
        (2**63, ["wrong_type:ms_played"]),  # past 64 bits (signed)
        (2**64, ["wrong_type:ms_played"]),
        (10**30, ["wrong_type:ms_played"]),
        (-(2**63) - 1, ["wrong_type:ms_played"]),
        (-(2**63), ["negative_ms_played"]),
        (1.0, ["wrong_type:ms_played"]),
        (True, ["wrong_type:ms_played"]),
        (None, ["missing_field:ms_played"]),
        ("1000", ["wrong_type:ms_played"]),
    ],
)
def test_ms_played_is_a_64_bit_integer(lake_settings, ms_played, expected):
    assert verdict(lake_settings, line(ms_played=ms_played)) == expected


def test_exponent_numbers_are_not_integers(lake_settings):
    text = line().replace(b'"ms_played": 1000', b'"ms_played": 1e3')
    assert verdict(lake_settings, text) == ["wrong_type:ms_played"]
    huge = line().replace(b'"ms_played": 1000', b'"ms_played": 1e999')
    assert verdict(lake_settings, huge) == ["wrong_type:ms_played"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", ["malformed_json"]),
        (b"   ", ["malformed_json"]),
        (line()[:-1], ["malformed_json"]),
        (line() + b" trailing", ["malformed_json"]),
        (b"\xef\xbb\xbf" + line(), ["malformed_json"]),  # a byte order mark
        (line()[:-1] + b",}", ["malformed_json"]),  # a trailing comma
        (line()[:-1] + b', "extra": [1, 2,]}', ["malformed_json"]),
        (line()[:-1] + b', "extra": NaN}', ["malformed_json"]),
        (line()[:-1] + b', "extra": -Infinity}', ["malformed_json"]),
        (line()[:-1] + b', "extra": "NaN, Infinity,]"}', SILVER),  # only text
        (line()[:-1] + b', "extra": {"a": 1e999}}', SILVER),  # valid JSON, if no double
        (line().replace(b'"ms_played": 1000', b'"ms_played": NaN'), ["malformed_json"]),
        (line()[:-1] + b" /* a comment */}", ["malformed_json"]),
        (b"\t" + line() + b"\r", SILVER),  # JSON whitespace around the object
        (b"null", ["not_a_json_object"]),
        (b'"a string"', ["not_a_json_object"]),
        (b"[1, 2,]", ["malformed_json"]),
        (b"[" * 100_000 + b"]" * 100_000, ["not_a_json_object"]),  # deep nesting
        (line(ts=[1, {"a": None}]), ["wrong_type:ts"]),
        (line(event_type={"nested": "object"}), ["wrong_type:event_type"]),
    ],
)
def test_json_is_strict_rfc_8259(lake_settings, raw, expected):
    assert verdict(lake_settings, raw) == expected


def test_deeply_nested_unknown_fields_are_kept_and_reported(lake_settings):
    deep = b'"deep": ' + b"[" * 100_000 + b"]" * 100_000
    land(lake_settings, [line()[:-1] + b", " + deep + b"}"])
    refined = run_engine(lake_settings)
    assert refined.silver.num_rows == 1
    assert refined.counts.unknown_fields == {"deep": 1}


def test_bytes_that_are_not_text_get_a_reason_and_a_text_for_quarantine(lake_settings):
    lines = [
        line(country="S\xe9").replace(b"\\u00e9", b"\xe9"),  # latin-1, not UTF-8
        b'{"event_id": "\xed\xa0\x80"}',  # an encoded surrogate
        line()[:-1] + b', "x": "\x00"}',  # a NUL byte
        b"\xff\x00",  # both
        line(user_id=GOOD["user_id"] + "\x00"),  # an escaped NUL: \u0000 in a field
        line()[:-1] + b', "note": "\\u0000"}',  # in an unknown field: bronze only
        b'{"a": "\\ud800"}',  # an unpaired surrogate escape
    ]
    land(lake_settings, lines)
    refined = run_engine(lake_settings)
    assert refined.reasons() == {
        1: ["invalid_utf8"],
        2: ["invalid_utf8"],
        3: ["nul_byte"],
        4: ["invalid_utf8", "nul_byte"],
        5: ["nul_byte"],
        7: ["malformed_json"],
    }
    texts = dict(zip(*refined.quarantine.select(["line_number", "raw"]).to_pydict().values(),
                     strict=True))  # fmt: skip
    assert texts[1] == lines[0].decode("utf-8", errors="replace")
    assert texts[4] == "\ufffd\ufffd"  # the invalid byte and the NUL, as PostgreSQL text can
    assert "\x00" not in "".join(texts.values())
    assert refined.silver.num_rows == 1


def test_a_line_cut_by_bronze_is_too_long_whatever_its_start(lake_settings):
    assert verdicts(lake_settings, [line()[:40], line()], cut={1: 5_000_000}) == [
        ["line_too_long"], SILVER
    ]  # fmt: skip


def test_a_field_given_twice_is_a_reason_whatever_its_values(lake_settings):
    twice = line()[:-1] + b', "ts": "2026-11-01T08:00:00Z"}'
    assert verdict(lake_settings, twice) == ["duplicate_field:ts"]
    other_twice = line()[:-1] + b', "x": 1, "x": 2}'
    assert verdict(lake_settings, other_twice) == SILVER


def test_duplicates_keep_the_first_line_whatever_the_batch_order(lake_settings):
    later = f"events/date={DAY}/events-{DAY}T11.jsonl.gz"
    land(lake_settings, [line(ts="yesterday"), line(), line()], file=later)  # file T11 first
    earlier_rows = lake.read_arrow(lake_settings, tables.BRONZE_EVENTS).to_pylist()
    for row in earlier_rows:
        row.update(source_file=FILE, line_number=row["line_number"] + 10)
    lake.write_arrow(
        lake_settings, tables.BRONZE_EVENTS,
        pa.Table.from_pylist(earlier_rows[2:], tables.BRONZE_EVENTS.schema),
    )  # fmt: skip  # the T10 file's line 13, written after T11's lines
    refined = run_engine(lake_settings, batch_rows=1)
    assert refined.reasons() == {1: ["unreadable_ts"]}  # a quarantined line keeps no id
    assert refined.silver.num_rows == 1
    lines = [("source_file", "ascending"), ("line_number", "ascending")]
    assert refined.duplicates.sort_by(lines).to_pylist() == [
        {"source_file": later, "line_number": 2},
        {"source_file": later, "line_number": 3},
    ]
    assert refined.counts.duplicate_rows == 2 and refined.counts.silver_event_ids == 1


def test_an_event_silver_holds_from_another_landing_day_is_a_duplicate(lake_settings):
    yesterday, sent = DAY - dt.timedelta(days=1), line(ts="2026-10-31T08:00:00Z")
    land(lake_settings, [sent], day=yesterday, file=f"events/date={yesterday}/x.jsonl.gz")
    assert refine_day(lake_settings, yesterday, "yesterday").silver_rows == 1
    assert verdicts(lake_settings, [sent, line(event_id=UUID_2)]) == ["duplicate", SILVER]
    refine_day(lake_settings, DAY, "today")  # a rerun of today does not hold its own ids
    assert verdicts(lake_settings, [line(event_id=UUID_2)]) == [SILVER]


def test_a_day_of_lines_that_stopped_days_before_is_refined_and_reconciles(lake_settings):
    lines = [
        line(ts="3000-01-01T00:00:00Z"),
        line(ts="9999-12-31T23:59:59-01:00"),
        line(ts="0001-01-01T00:00:00+01:00"),
        line(ms_played=2**64),
        b"\xff" * 10,
        b"{\x00}",
        b"[" * 50_000,
        line(),
        line(),
        json.dumps({"event_id": UUID_2}).encode(),
    ]
    land(lake_settings, lines)
    for run in ("first", "second"):  # a rerun replaces the day: same tables
        result = refine_day(lake_settings, DAY, run)
        assert (result.silver_rows, result.quarantine_rows, result.duplicate_rows) == (1, 8, 1)
        assert result.bronze_rows == len(lines)
        silver = lake.read_arrow(lake_settings, tables.SILVER_EVENTS)
        quarantine = lake.read_arrow(lake_settings, tables.QUARANTINE_EVENTS)
        assert (silver.num_rows, quarantine.num_rows) == (1, 8)
        assert all(quarantine.column("reasons").to_pylist())


def test_the_report_passes_when_quarantine_works_and_only_a_gate_fails_the_day(lake_settings):
    suite = event_suites.refine(rules.REASON_FAMILIES)
    healthy = event_suites.RefineSummary(
        bronze_rows=10, silver_rows=6, quarantine_rows=3, duplicate_rows=1,
        rows_by_reason={"malformed_json": 2, "unknown_user_id": 1},
        silver_columns=tables.SILVER_EVENTS.schema.names, silver_nulls={}, silver_event_ids=6,
        silver_unknown_event_types=0,
    )  # fmt: skip
    outcome = validate(lake_settings, suite, [healthy.row(rules.REASON_FAMILIES)], "healthy")
    assert outcome.success and not outcome.critical_failures

    broken = event_suites.RefineSummary(
        **{**healthy.__dict__, "silver_event_ids": 5, "silver_nulls": {"user_id": 1}}
    )
    outcome = validate(lake_settings, suite, [broken.row(rules.REASON_FAMILIES)], "broken")
    assert not outcome.success
    failed = " ".join(outcome.critical_failures)
    assert "null_user_id" in failed and "distinct_event_id" in failed
    assert "reason_" not in failed  # the row-level report never fails the day
    with pytest.raises(QualityGateError, match=f"{tables.SILVER_EVENTS}, batch broken"):
        outcome.raise_if_critical(str(tables.SILVER_EVENTS))
