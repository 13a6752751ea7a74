"""Whatever bytes a line holds, it gets a verdict: arbitrary lines, mixed with valid events and
near-valid ones, go through the engine without an exception, each line is accounted for exactly
once (silver, quarantine or duplicate), and every quarantined line says why."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audotics.lake import tables
from ingestion import rules
from tests.ingestion.refine_support import GOOD, land, line, run_engine, write_catalog

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
# Events with any subset of the fields, each a JSON value of any type, or a valid value.
near_events = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.sampled_from([GOOD[name]] if GOOD[name] is not None else [None])
        for name in rules.FIELD_NAMES
    },
).map(lambda event: json.dumps(event).encode())
valid_events = st.builds(
    lambda event_id, ms: line(event_id=str(event_id), ms_played=ms),
    st.uuids(version=4),
    st.integers(0, 200_000),
)
resent = st.just(line())  # the same event again: duplicates
any_line = st.one_of(
    st.binary(max_size=300).map(lambda raw: raw.replace(b"\n", b"")),
    st.text(max_size=200).map(str.encode),
    near_events,
    valid_events,
    resent,
)


@pytest.fixture(scope="module")
def lake_settings(make_settings, tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("any-bytes"))
    write_catalog(settings)
    return settings


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(any_line, min_size=1, max_size=25), batch_rows=st.integers(1, 8))
def test_any_line_gets_exactly_one_verdict_and_a_reason_when_quarantined(
    lake_settings, lines, batch_rows
):
    land(lake_settings, lines)
    refined = run_engine(lake_settings, batch_rows=batch_rows)  # must not raise

    quarantined = refined.quarantine.column("line_number").to_pylist()
    candidates = refined.candidates.column("line_number").to_pylist()
    duplicates = refined.duplicates.column("line_number").to_pylist()
    assert sorted(quarantined + candidates) == list(range(1, len(lines) + 1))
    assert set(duplicates) <= set(candidates)
    silver = refined.silver
    assert silver.num_rows + len(quarantined) + len(duplicates) == len(lines)
    assert refined.counts.bronze_rows == len(lines)
    assert refined.counts.duplicate_rows == len(duplicates)

    families = set(rules.REASON_FAMILIES)
    for reasons in refined.quarantine.column("reasons").to_pylist():
        assert reasons and {rules.family(r) for r in reasons} <= families
    assert all("\x00" not in text for text in refined.quarantine.column("raw").to_pylist())
    assert silver.schema == tables.SILVER_EVENTS.schema
    ids = silver.column("event_id").to_pylist()
    assert len(ids) == len(set(ids)) == refined.counts.silver_event_ids
    assert all(uuid.UUID(event_id) for event_id in ids)
