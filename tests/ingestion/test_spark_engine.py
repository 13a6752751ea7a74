"""The Spark engine judges a day exactly as the DuckDB engine does: every hostile line of
test_rules and test_any_bytes, duplicates within the day and an event silver holds from
another landing day, through both engines, give identical rows (compared by row hashes, the
processing timestamps aside) and identical counts; `refine_day` on Spark commits the same lake
tables; and so does a real Spark standalone cluster."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audotics import lake
from audotics.lake import tables
from ingestion.refine import refine_day
from orchestration.spark_cluster import local_cluster
from tests.ingestion import test_any_bytes, test_rules
from tests.ingestion.refine_support import (
    DAY,
    FILE,
    GOOD,
    TIMES,
    Refined,
    committed,
    land,
    line,
    run_engine,
    write_catalog,
)
from tests.support import REPO, environment_for, free_port, python_json

LATER = f"events/date={DAY}/events-{DAY}T11.jsonl.gz"
NO_HOUR = f"events/date={DAY}/resent.jsonl.gz"  # no hour in its name: the day's end
YESTERDAY = DAY - dt.timedelta(days=1)
RESENT = line(event_id="0e1d7d1f-0000-4000-8000-0000000000aa", ts="2026-10-31T08:00:00Z")


def _parameters(test) -> list[tuple]:
    """The parameter sets of a parametrized test of another module."""
    (mark,) = [mark for mark in test.pytestmark if mark.name == "parametrize"]
    return list(mark.args[1])


def hostile_lines() -> list[bytes]:
    """Every line test_rules judges, each case once."""
    value_rules = _parameters(test_rules.test_each_value_rule_gives_its_reason_and_only_it)
    timestamps = _parameters(test_rules.test_any_timestamp_gets_a_verdict_and_none_stops_the_day)
    integers = _parameters(test_rules.test_ms_played_is_a_64_bit_integer)
    lines = [
        *(line(**changes) for changes, _ in value_rules),
        *(line(ts=value) for value, _ in timestamps),
        *(line(ms_played=value) for value, _ in integers),
        *(raw for raw, _ in _parameters(test_rules.test_json_is_strict_rfc_8259)),
    ]
    good = line()
    lines += [
        good.replace(b'"ms_played": 1000', b'"ms_played": 1e3'),
        good.replace(b'"ms_played": 1000', b'"ms_played": 1e999'),
        good.replace(b'"ms_played": 1000', b'"ms_played": -0'),
        good.replace(b'"ms_played": 1000', b'"ms_played": ' + b"1" * 1200),
        good.replace(b'"ms_played": 1000', b'"ms_played": 0' + b"0" * 1200),
        good[:-1] + b', "long": ' + b"9" * 5000 + b"}",
        good[:-1] + b', "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        good[:-1] + b', "deep": ' + b'[{"a": ' * 3000 + b"1" + b"}]" * 3000 + b"}",
        good[:-1] + b', "deep": ' + b'[{"a": ' * 3000 + b"1" + b"]}" * 3000 + b"}",
        good[:-1] + b', "ts": "2026-11-01T08:00:00Z"}',  # a field twice
        good[:-1] + b', "x": 1, "x": 2}',  # an unknown field twice
        good[:-1] + b', "\\u0078": 1, "x": 2, "\\u00e9t\\u00e9": 3}',  # escaped keys
        good.replace(b'"event_type"', b'"\\u0065vent_type"'),
        good[:-1] + b', "deep": ' + b"[" * 2000 + b"]" * 2000 + b', "x": 1, "x": 2}',
        b'{"event_id": 1, "event_id": "a"}',
        good[:-1] + b"} ",
        good + b" {}",
        good + b",{}",
        good + b"]x[",
        good + b"\x0c",
        good + b"\xc2\xa0",
        b"[" * 2000 + b"1" + b"]" * 2000,
        b"[" * 2000 + b"1" + b"]" * 1999,
        b'["\\ud800\\udc00", "\\udc00"]',
        b'{"a": "\\ud83d\\ude00"}',
        b'{"a": "\t"}',
        b'{"a": 01}',
        b"{'a': 1}",
        b'{"a": 1}/* c */',
        line(country="S\xe9").replace(b"\\u00e9", b"\xe9"),
        b'{"event_id": "\xed\xa0\x80"}',
        good[:-1] + b', "x": "\x00"}',
        b"\xff\x00",
        line(user_id=GOOD["user_id"] + "\x00"),
        good[:-1] + b', "note": "\\u0000"}',
        b'{"a": "\\ud800"}',
        good[:40],
        b"\xff" * 10,
        b"{\x00}",
        b"[" * 50_000,
        json.dumps({"event_id": "0e1d7d1f-0000-4000-8000-000000000002"}).encode(),
    ]
    return lines


def arbitrary_lines(count: int) -> list[bytes]:
    """`count` lines drawn from test_any_bytes's strategy, the same on every run."""
    drawn: list[bytes] = []

    @hypothesis_settings(
        max_examples=count, derandomize=True, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), deadline=None,
    )  # fmt: skip
    @given(st.lists(test_any_bytes.any_line, min_size=5, max_size=5))
    def draw(lines: list[bytes]) -> None:
        drawn.extend(lines)

    draw()
    return drawn[:count]


def land_day(settings) -> list[bytes]:
    """The day: hostile and arbitrary lines over three files, duplicates within the day (the
    same event in several files, bronze order not line order), an event silver holds from
    yesterday."""
    lines = hostile_lines() + arbitrary_lines(300) + [RESENT, line(), line()]
    thirds = len(lines) // 3
    land(settings, lines[thirds:], file=LATER)  # the later file first
    for file, part, first in ((FILE, lines[:thirds], 0), (NO_HOUR, lines[:50], 10_000)):
        rows = [
            {"source_file": file, "line_number": first + number, "raw": raw, "run_id": "test",
             "ingested_at": dt.datetime.now(dt.UTC), "landing_date": DAY,
             "raw_bytes": len(raw) + (100 if number == 3 else 0), "raw_sha256": None}
            for number, raw in enumerate(part, 1)
        ]  # fmt: skip
        lake.write_arrow(
            settings, tables.BRONZE_EVENTS, pa.Table.from_pylist(rows, tables.BRONZE_EVENTS.schema)
        )
    return lines


def row_hashes(refined: Refined) -> dict[str, list[str]]:
    """Each staged table as the sorted hashes of its rows, the processing timestamps left out."""
    hashes = {}
    for name in ("quarantine", "candidates", "duplicates"):
        table = getattr(refined, name)
        kept = [column for column in table.column_names if column not in TIMES]
        hashes[name] = sorted(
            hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()
            for row in table.select(kept).to_pylist()
        )
    return hashes


def _differences(duckdb: Refined, spark: Refined) -> str:
    """The rows one engine staged and the other did not, for a readable failure."""
    lines = []
    for name in ("quarantine", "candidates", "duplicates"):
        tables_ = [getattr(r, name) for r in (duckdb, spark)]
        kept = [c for c in tables_[0].column_names if c not in TIMES]
        rows = [
            Counter(repr(sorted(r.items())) for r in t.select(kept).to_pylist()) for t in tables_
        ]
        lines += [f"{name} duckdb only: {row[:300]}" for row in (rows[0] - rows[1])]
        lines += [f"{name} spark only: {row[:300]}" for row in (rows[1] - rows[0])]
    return "\n".join(lines[:40])


def counts_of(refined: Refined) -> dict:
    counts = refined.counts
    return {
        **counts.__dict__,
        "reasons": dict(+counts.reasons),
        "unknown_fields": dict(+counts.unknown_fields),
        "silver_nulls": dict(+counts.silver_nulls),
    }


@pytest.fixture(scope="module")
def day_lake(make_settings, tmp_path_factory, spark):
    """A lake with the catalog, yesterday refined (its silver holds RESENT) and today landed."""
    settings = make_settings(tmp_path_factory.mktemp("spark-engine"))
    write_catalog(settings)
    land(settings, [RESENT], day=YESTERDAY, file=f"events/date={YESTERDAY}/x.jsonl.gz")
    assert refine_day(settings, YESTERDAY, "yesterday").silver_rows == 1
    land_day(settings)
    return settings


@pytest.fixture(scope="module")
def duckdb_refined(day_lake) -> Refined:
    return run_engine(day_lake, batch_rows=97)


def test_spark_stages_the_same_rows_and_counts_as_duckdb(day_lake, duckdb_refined):
    spark_refined = run_engine(day_lake, engine="spark")
    assert row_hashes(spark_refined) == row_hashes(duckdb_refined), _differences(
        duckdb_refined, spark_refined
    )
    assert counts_of(spark_refined) == counts_of(duckdb_refined)
    # The day covers what it is meant to: every family of reason, duplicates of both kinds.
    assert duckdb_refined.counts.duplicate_rows >= 3
    assert {"line_too_long", "invalid_utf8", "nul_byte", "malformed_json", "not_a_json_object",
            "duplicate_field", "unreadable_ts"} <= set(duckdb_refined.counts.reasons)  # fmt: skip
    assert {"deep", "x"} <= set(duckdb_refined.counts.unknown_fields)


def test_refine_day_on_spark_commits_what_duckdb_commits(day_lake, duckdb_refined):
    """The day refined by DuckDB, then again by Spark: a rerun replaces the day, so the lake
    tables must not change."""
    results = {}
    for engine in ("duckdb", "spark"):
        settings = day_lake.model_copy(update={"ingest_engine": engine})
        results[engine] = refine_day(settings, DAY, "today"), committed(settings)
    assert results["spark"] == results["duckdb"]
    silver_rows = results["spark"][0].silver_rows
    assert silver_rows == duckdb_refined.silver.num_rows > 0
    assert len(results["spark"][1]["events"]) > 0


STANDALONE_SCRIPT = """
import json, sys
from audotics.settings import Settings
from tests.ingestion.refine_support import run_engine
from tests.ingestion.test_spark_engine import counts_of, row_hashes

settings = Settings(_env_file=None, spark_master=sys.argv[1])
refined = run_engine(settings, engine="spark")
print(json.dumps({"hashes": row_hashes(refined), "counts": counts_of(refined)}, default=str))
"""


def test_a_standalone_cluster_judges_a_day_as_duckdb(make_settings, tmp_path):
    settings = make_settings(tmp_path)
    write_catalog(settings)
    small = [raw for raw in hostile_lines() if len(raw) < 10_000]
    land(settings, [*small, *arbitrary_lines(100), line(), line()])
    duckdb_refined = run_engine(settings, batch_rows=50)
    env = {**environment_for(settings), "PYTHONPATH": str(REPO)}
    ports = {"spark_cluster_port": free_port(), "spark_cluster_ui_port": free_port()}
    with local_cluster(settings.model_copy(update=ports), workers=1, cores=2) as cluster:
        outcome = python_json(STANDALONE_SCRIPT, cluster.master_url, env=env, timeout=300)
    assert outcome["hashes"] == row_hashes(duckdb_refined)
    assert outcome["counts"] == json.loads(json.dumps(counts_of(duckdb_refined), default=str))
