"""The row rules of event ingestion, declared once, as data every engine runs.

An engine (`ingestion.engines.Engine`) turns the bronze rows of one landing day into quarantine
rows (each with every reason it earned), silver candidates and duplicates. It owns the parsing;
this module owns the verdict. The contract an engine keeps, so that every engine gives
identical tables:

1. **Line-level checks, in this order; the first that applies decides alone** (a line that
   fails one is not looked at further, except that `invalid_utf8` and `nul_byte` are collected
   together, in that order):
   - `line_too_long`: bronze holds only the start of the line (`raw_bytes` > bytes of `raw`);
   - `invalid_utf8`: `raw` is not valid UTF-8; `nul_byte`: `raw` holds a 0x00 byte
     (PostgreSQL text cannot hold one, and no JSON text can);
   - `malformed_json`: the text is not one RFC 8259 JSON value (an empty line is not one).
     Strict: no NaN/Infinity, no trailing commas, no comments, no BOM, nothing but JSON
     whitespace around the value, surrogate escapes paired. Numbers of any magnitude and any
     nesting depth are valid JSON: a parser with a depth limit must not decide here;
   - `not_a_json_object`: valid JSON, not an object.
2. **Field checks** over `FIELDS`, in their order, at most one reason per field, the first that
   applies: `duplicate_field:<f>` (the key appears twice: which value counts is parser-specific,
   so neither does), `missing_field:<f>` (required, absent or JSON null), `wrong_type:<f>`
   (present, not null, not its `Kind`). Then `nul_byte`, once, if a field's string decodes to
   text holding U+0000 (the `\\u0000` escape). Any of these ends the checks.
3. `unreadable_ts`: `ts` does not fully match `ISO_TIMESTAMP`, or names no calendar instant
   (2026-02-30). A timestamp without an offset is UTC; fractions beyond microseconds are
   truncated. Years 1..9999 with offsets up to 18:00 all parse: the instant may fall in year 0
   or 10000 (UTC), and the value rules judge it; nothing raises.
4. **Value rules**: every rule of `value_rules(dialect)` whose SQL `fails` is TRUE adds its
   reason, in their order (a row may collect several). NULL counts as passing: a missing
   optional value or catalog match is judged by the rule written for it (GX's
   `ignore_row_if="either_value_is_missing"`). `fails` reads the typed fields (`ts` an instant,
   `ms_played` a 64-bit integer, the rest text) and helper columns the engine provides:
   - `max_ts`: end of the hour the row's source file covers (`landing.arrival_hour_end`) plus
     AUDOTICS_MAX_CLOCK_SKEW_MINUTES;
   - `min_ts`: `min_ts(D, lateness_days)`, the start of the lateness window of landing day D;
   - `launch_ts`: `launch_ts(service_launch_date)`;
   - `user_created_at`: `created_at` of the row's user among the current `silver/users` rows,
     NULL for an unknown user; `track_duration_ms`: likewise `duration_ms` from the current
     `silver/tracks`; `max_ms_played` = `track_duration_ms + MS_PLAYED_SLACK`.
   A `Dialect` renders what engines spell differently (a regular expression's full match: the
   whole text, a trailing newline included); the rest is SQL DuckDB and Spark run alike.
5. **Duplicates** (not a reason; counted apart) among the rows with no reason: all but the
   first of each `event_id` by (`source_file`, `line_number`) within the landing day D, whatever
   order the engine reads them in; and every row whose `event_id` silver holds from a landing
   day other than D in the event_date partitions `silver_window(D)` (silver rows of D itself
   are what a rerun replaces). So bronze = silver + quarantine + duplicates, exactly.
6. **Quarantine text**: `raw` decoded as UTF-8 with each invalid sequence replaced by U+FFFD
   (Python's `errors="replace"`), and each NUL by U+FFFD too; bronze keeps the exact bytes.
7. `unknown_fields`: per top-level key outside `FIELDS`, the number of lines that are JSON
   objects (point 1 passed) holding it: the schema-drift report; the fields stay in bronze.
8. Counts for the Data Docs: per reason family (`family`, listed in `REASON_FAMILIES`), the
   rows quarantined with at least one reason of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cache

from audotics.identifiers import UUID_PATTERN
from audotics.vocabulary import CONTEXTS, DEVICES, EVENT_TYPES

# A play can run a little past the catalog's duration (crossfade, clock rounding).
MS_PLAYED_SLACK = 5_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Kind(Enum):
    STRING = "string"  # a JSON string
    TIMESTAMP = "timestamp"  # a JSON string holding an ISO_TIMESTAMP
    INT64 = "int64"  # a JSON number with no fraction or exponent in [INT64_MIN, INT64_MAX];
    # true/false are not numbers, 1.0 and 1e3 are not integers


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool


FIELDS: tuple[Field, ...] = (
    Field("event_id", Kind.STRING, True),
    Field("event_type", Kind.STRING, True),
    Field("user_id", Kind.STRING, True),
    Field("track_id", Kind.STRING, True),
    Field("ts", Kind.TIMESTAMP, True),
    Field("ms_played", Kind.INT64, True),
    Field("context", Kind.STRING, False),
    Field("playlist_id", Kind.STRING, False),
    Field("model_version", Kind.STRING, False),
    Field("experiment", Kind.STRING, False),
    Field("arm", Kind.STRING, False),
    Field("device", Kind.STRING, False),
    Field("country", Kind.STRING, False),
)
FIELD_NAMES = tuple(field.name for field in FIELDS)

# --- reasons ------------------------------------------------------------------------------------

LINE_TOO_LONG = "line_too_long"
INVALID_UTF8 = "invalid_utf8"
NUL_BYTE = "nul_byte"
MALFORMED_JSON = "malformed_json"
NOT_A_JSON_OBJECT = "not_a_json_object"
UNREADABLE_TS = "unreadable_ts"
DUPLICATE_FIELD, MISSING_FIELD, WRONG_TYPE = "duplicate_field", "missing_field", "wrong_type"
FIELD_CHECKS = (DUPLICATE_FIELD, MISSING_FIELD, WRONG_TYPE)  # per field, first that applies


def field_reason(check: str, field: str) -> str:
    """`missing_field:ts`: the reason a field check gives for one field."""
    return f"{check}:{field}"


def family(reason: str) -> str:
    """The reason without its field: `missing_field:ts` -> `missing_field`."""
    return reason.split(":", 1)[0]


# --- patterns: full match, in the syntax RE2 (DuckDB) and java.util.regex (Spark) share --------

UUID = UUID_PATTERN.removeprefix("^").removesuffix("$")
_YEAR = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001..9999
_TIME = "[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,9})?)?"
_OFFSET = "(Z|[+-]((0[0-9]|1[0-7])(:?[0-5][0-9])?|18(:?00)?))"  # java.time's range, +-18:00
# YYYY-MM-DD, optionally with a time (hh:mm, seconds and up to 9 fraction digits optional,
# beyond microseconds truncated) and an offset; no offset means UTC.
ISO_TIMESTAMP = f"{_YEAR}-[0-9]{{2}}-[0-9]{{2}}({_TIME}{_OFFSET}?)?"


@dataclass(frozen=True)
class Dialect:
    """How an engine's SQL spells what differs between engines."""

    name: str
    full_match: Callable[[str, str], str]  # (SQL value, pattern) -> SQL boolean


def sql_string(text: str) -> str:
    """A SQL string literal (no backslashes: both engines then read it alike)."""
    if "\\" in text:
        raise ValueError(f"{text!r}: backslashes are read differently by DuckDB and Spark SQL")
    return "'" + text.replace("'", "''") + "'"


def _duckdb_full_match(value: str, pattern: str) -> str:
    return f"regexp_full_match({value}, {sql_string(pattern)})"


def _spark_full_match(value: str, pattern: str) -> str:
    # java.util.regex `$` also matches before a final newline: `\z` is the end of the text.
    # Spark SQL unescapes string literals, so the SQL text spells it `\\z`.
    return f"({value} RLIKE {sql_string('^(' + pattern + ')')[:-1]}\\\\z')"


DUCKDB = Dialect("duckdb", _duckdb_full_match)
SPARK = Dialect("spark", _spark_full_match)


# --- value rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    reason: str
    fails: str  # SQL boolean over the typed fields and helper columns: TRUE = the row breaks it


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(sql_string(value) for value in values) + ")"


@cache
def value_rules(dialect: Dialect) -> tuple[Rule, ...]:
    """The value rules in the order their reasons are listed."""
    return (
        Rule("unknown_event_type", f"event_type NOT IN {_in(EVENT_TYPES)}"),
        Rule("unknown_context", f"context IS NOT NULL AND context NOT IN {_in(CONTEXTS)}"),
        Rule("unknown_device", f"device IS NOT NULL AND device NOT IN {_in(DEVICES)}"),
        # An exposure names both the experiment and the arm, or neither.
        Rule("unpaired_experiment_arm", "(experiment IS NULL) <> (arm IS NULL)"),
        Rule("malformed_event_id", f"NOT {dialect.full_match('event_id', UUID)}"),
        Rule("unknown_user_id", "user_created_at IS NULL"),
        Rule("unknown_track_id", "track_duration_ms IS NULL"),
        Rule("ts_before_service_launch", "ts < launch_ts"),
        Rule("ts_in_future", "ts > max_ts"),
        Rule("later_than_lateness_window", "ts < min_ts"),
        Rule("event_before_user_signup", "user_created_at IS NOT NULL AND ts < user_created_at"),
        Rule("negative_ms_played", "ms_played < 0"),
        Rule(
            "ms_played_exceeds_track_duration",
            "max_ms_played IS NOT NULL AND ms_played > max_ms_played",
        ),
    )


LINE_REASONS = (LINE_TOO_LONG, INVALID_UTF8, NUL_BYTE, MALFORMED_JSON, NOT_A_JSON_OBJECT)
# Every reason family a row can earn, in the order of the checks: what the Data Docs report.
REASON_FAMILIES = (
    *LINE_REASONS,
    *FIELD_CHECKS,
    UNREADABLE_TS,
    *(rule.reason for rule in value_rules(DUCKDB)),
)


# --- helper values -----------------------------------------------------------------------------


def min_ts(day: dt.date, lateness_days: int) -> dt.datetime:
    """The earliest `ts` a landing day accepts: the start of its lateness window."""
    return dt.datetime.combine(day - dt.timedelta(days=lateness_days), dt.time(), tzinfo=dt.UTC)


def launch_ts(launch: dt.date) -> dt.datetime:
    return dt.datetime.combine(launch, dt.time(), tzinfo=dt.UTC)


def silver_window(day: dt.date, lateness_days: int) -> tuple[dt.date, dt.date]:
    """The event_date partitions (first, last) a landing day can write to: the lateness window,
    and the day after it for timestamps within the clock skew."""
    return day - dt.timedelta(days=lateness_days + 1), day + dt.timedelta(days=1)
