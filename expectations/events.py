"""Suites for listening events: row-level conformance (failures are quarantined with a reason)
and the critical gates on the silver batch and on silver as a whole."""

from __future__ import annotations

import great_expectations.expectations as gxe

from audotics.identifiers import UUID_PATTERN
from audotics.lake import tables
from audotics.settings import Settings
from audotics.vocabulary import CONTEXTS, DEVICES, EVENT_TYPES
from expectations.validation import Suite

SILVER_COLUMNS = tables.SILVER_EVENTS.schema.names
SILVER_REQUIRED = [field.name for field in tables.SILVER_EVENTS.schema if not field.nullable]
(SILVER_KEY,) = tables.SILVER_EVENTS.keys  # one column: checked with a column expectation


def conformance(settings: Settings) -> Suite:
    """Rows of a parsed batch. The batch carries helper columns computed from the catalog and the
    source file (user_created_at, track_duration_ms, max_ms_played, max_ts, min_ts)."""
    launch = f"{settings.service_launch_date.isoformat()}T00:00:00+00:00"
    return Suite(
        name="events.conformance",
        table=tables.BRONZE_EVENTS.path,
        description="Row-level rules; failing rows go to quarantine/events with the reason.",
        expectations=(
            gxe.ExpectColumnValuesToBeInSet(
                column="event_type", value_set=list(EVENT_TYPES),
                meta={"reason": "unknown_event_type"},
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="context", value_set=list(CONTEXTS), meta={"reason": "unknown_context"}
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="device", value_set=list(DEVICES), meta={"reason": "unknown_device"}
            ),
            gxe.ExpectColumnValuesToMatchRegex(
                column="event_id", regex=UUID_PATTERN, meta={"reason": "malformed_event_id"}
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="user_created_at", meta={"reason": "unknown_user_id"}
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="track_duration_ms", meta={"reason": "unknown_track_id"}
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="ts", min_value=launch, meta={"reason": "ts_before_service_launch"}
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="max_ts", column_B="ts", or_equal=True,
                meta={"reason": "ts_in_future"},
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ts", column_B="min_ts", or_equal=True,
                meta={"reason": "later_than_lateness_window"},
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ts", column_B="user_created_at", or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta={"reason": "event_before_user_signup"},
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="ms_played", min_value=0, meta={"reason": "negative_ms_played"}
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="max_ms_played", column_B="ms_played", or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta={"reason": "ms_played_exceeds_track_duration"},
            ),
        ),
    )  # fmt: skip


def silver_batch() -> Suite:
    """The batch about to be committed to silver/events: any failure stops the stage."""
    return Suite(
        name="events.silver_batch",
        table=tables.SILVER_EVENTS.path,
        description="Gate before the silver commit: schema, keys, uniqueness, vocabularies.",
        expectations=(
            gxe.ExpectTableColumnsToMatchOrderedList(
                column_list=SILVER_COLUMNS, meta={"critical": True}
            ),
            *(
                gxe.ExpectColumnValuesToNotBeNull(column=column, meta={"critical": True})
                for column in SILVER_REQUIRED
            ),
            gxe.ExpectColumnValuesToBeUnique(column=SILVER_KEY, meta={"critical": True}),
            gxe.ExpectColumnValuesToBeInSet(
                column="event_type", value_set=list(EVENT_TYPES), meta={"critical": True}
            ),
        ),
    )  # fmt: skip


def silver_unique() -> Suite:
    """event_id is unique across silver (checked over the partitions a run can touch)."""
    return Suite(
        name="events.silver_unique",
        table=tables.SILVER_EVENTS.path,
        description="Gate after the silver commit: no event_id twice, across runs.",
        expectations=(
            gxe.ExpectColumnValuesToBeUnique(column=SILVER_KEY, meta={"critical": True}),
        ),
    )
