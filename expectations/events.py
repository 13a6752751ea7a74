"""The suite of one landing day's refine (bronze to quarantine and silver), run on a one-row
summary of the day, never on the rows themselves.

Two kinds of expectation, told apart in the Data Docs by their description and severity:
- gates (critical): the silver batch about to be committed has the contract's columns, no
  null keys, a unique event_id (within the day, and none silver holds from another landing
  day), known event types; and every bronze row is in silver, quarantine or a duplicate.
  A failing gate stops the stage before anything is committed.
- row-level rules (info): how many rows each reason quarantined, and the duplicates. They
  pass: quarantining bad rows is the pipeline doing its job, not a failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from audotics.lake import tables
from audotics.vocabulary import EVENT_TYPES
from expectations.validation import INFO, Suite, expect

SILVER_COLUMNS = tables.SILVER_EVENTS.schema.names
SILVER_REQUIRED = [field.name for field in tables.SILVER_EVENTS.schema if not field.nullable]
(SILVER_KEY,) = tables.SILVER_EVENTS.keys


@dataclass(frozen=True)
class RefineSummary:
    """What one landing day's refine produced, counted on the way."""

    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    duplicate_rows: int
    rows_by_reason: Mapping[str, int]  # reason family -> rows quarantined with it
    silver_columns: Sequence[str]  # of the silver batch, in order
    silver_nulls: Mapping[str, int]  # column -> null values in the silver batch
    silver_event_ids: int  # distinct event ids in the silver batch
    silver_unknown_event_types: int

    def row(self, reason_families: Sequence[str]) -> dict[str, Any]:
        """The one row `refine(reason_families)` validates."""
        return {
            "bronze_rows": self.bronze_rows,
            "silver_rows": self.silver_rows,
            "quarantine_rows": self.quarantine_rows,
            "duplicate_rows": self.duplicate_rows,
            "accounted_rows": self.silver_rows + self.quarantine_rows + self.duplicate_rows,
            "silver_columns": ",".join(self.silver_columns),
            **{f"null_{c}": self.silver_nulls.get(c, 0) for c in SILVER_REQUIRED},
            f"distinct_{SILVER_KEY}": self.silver_event_ids,
            "unknown_event_types": self.silver_unknown_event_types,
            **{f"reason_{r}": self.rows_by_reason.get(r, 0) for r in reason_families},
        }


def _gate(kind: str, description: str, **arguments: object):
    return expect(kind, f"Gate: {description}", **arguments)


@cache
def refine(reason_families: tuple[str, ...]) -> Suite:
    """Gates on the silver batch and the day's accounting, and the per-reason report."""
    gates = (
        _gate(
            "ExpectColumnValuesToBeInSet",
            "the silver batch has the contract's columns, in order",
            column="silver_columns", value_set=[",".join(SILVER_COLUMNS)],
        ),
        *(
            _gate(
                "ExpectColumnMaxToBeBetween", f"no silver row without {column}",
                column=f"null_{column}", min_value=0, max_value=0,
            )
            for column in SILVER_REQUIRED
        ),
        _gate(
            "ExpectColumnPairValuesToBeEqual",
            f"{SILVER_KEY} is unique in silver: within the day, and none held by another "
            "landing day",
            column_A="silver_rows", column_B=f"distinct_{SILVER_KEY}",
        ),
        _gate(
            "ExpectColumnMaxToBeBetween",
            f"every silver event_type is one of {', '.join(EVENT_TYPES)}",
            column="unknown_event_types", min_value=0, max_value=0,
        ),
        _gate(
            "ExpectColumnPairValuesToBeEqual",
            "every bronze row is in silver, in quarantine or a duplicate, exactly once",
            column_A="bronze_rows", column_B="accounted_rows",
        ),
    )  # fmt: skip
    report = tuple(
        expect(
            "ExpectColumnSumToBeBetween",
            f"Row-level: {what} (reported, not a gate: quarantine did its job)",
            severity=INFO, column=column, min_value=0,
        )
        for column, what in (
            *((f"reason_{r}", f"rows quarantined as {r}") for r in reason_families),
            ("duplicate_rows", "duplicate rows left out of silver"),
        )
    )  # fmt: skip
    return Suite(
        name="events.refine",
        table=tables.SILVER_EVENTS.path,
        description="One landing day from bronze to quarantine and silver: gates on the silver "
        "batch before it is committed, and the rows each row-level rule quarantined.",
        expectations=gates + report,
    )
