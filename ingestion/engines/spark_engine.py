"""The Spark engine: the rules of `ingestion.rules` as Spark SQL expressions, for a landing day
beyond one machine. No Python runs on the executors (no UDFs) and the driver collects only
counts (and the day's source file names, whose hour `landing.arrival_hour_end` gives).

JSON is judged in two ways that agree on every line:

- the fast way, Jackson (`try_parse_json`, a VARIANT). Jackson is strict about what RFC 8259
  forbids (NaN, comments, trailing commas, a BOM, control characters, lone surrogate escapes)
  but stops reading after the first value. So the text is parsed twice, inside `[...]` and
  inside `{"k": ...}`: anything after a complete value breaks one of the two (after the value
  the array wants `,`/`]` then a value; the object wants `,`/`}` then a key and `:`);
- the exact way, for the lines Jackson refuses (malformed ones, but also valid ones beyond its
  limits: nesting deeper than 1000, numbers longer than 1000 digits, and any duplicate key):
  the text is cut into JSON tokens by one regular expression (strings with their escapes and
  paired surrogates, numbers, literals, punctuation; any other character is a token of its
  own, and is wrong), one row per token, and the grammar is checked with window functions:
  the depth is a running sum of brackets, a bracket closes the last one opened at its depth,
  and each token must be one the previous allows. No stack, no recursion, no limit.

Both give, per line, the top-level keys (decoded, duplicates kept) and each field's JSON type
and value, which the field checks (point 2) read alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from audotics import lake
from audotics.lake import exists, tables
from audotics.lake.spark import read_table, write_table
from audotics.settings import Settings
from audotics.spark import spark_job
from audotics.vocabulary import EVENT_TYPES
from ingestion import bronze, rules
from ingestion.engines import STAGED, DayCounts, Engine, EngineError
from ingestion.landing import arrival_hour_end

LINE = ["source_file", "line_number"]
SILVER_BATCH = 65_536  # rows per batch streamed into the silver commit
# One JSON token (possessive quantifiers: no backtracking, no recursion on long strings), or
# any other single character. Strings: no raw control characters, valid escapes, surrogate
# escapes only in high-low pairs.
_HEX = "[0-9a-fA-F]"
_ESCAPE = (
    r'\\["\\/bfnrt]'
    rf"|\\u(?![dD][89a-fA-F]){_HEX}{{4}}"
    rf"|\\u[dD][89abAB]{_HEX}{{2}}\\u[dD][c-fC-F]{_HEX}{{2}}"
)
JSON_STRING = rf'"(?:[^"\\\x00-\x1f]++|{_ESCAPE})*+"'
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*+)(?:[.][0-9]++)?(?:[eE][+-]?[0-9]++)?"
JSON_TOKEN = rf"{JSON_STRING}|{JSON_NUMBER}|true|false|null|[{{}}\[\]:,]|[ \t\n\r]++|[\s\S]"
INTEGER = r"^-?(?:0|[1-9][0-9]*)$"  # a JSON number with no fraction or exponent
# The parts of a text that matched rules.ISO_TIMESTAMP: date, time, fraction, offset.
TS_PARTS = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.]([0-9]{1,9}))?)?"
    r"(Z|([+-])([0-9]{2}):?([0-9]{2})?)?)?$"
)
MEMBERS = "array<struct<pos: int, key: string, value: string>>"


_EPOCH, _US = dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.timedelta(microseconds=1)


def _micros(moment: dt.datetime) -> int:
    """An instant as microseconds since the epoch (exact, for Spark's timestamp_micros)."""
    return (moment - _EPOCH) // _US


def _instant(moment: dt.datetime) -> Column:
    return F.timestamp_micros(F.lit(_micros(moment)))


def _present(values: list[Column]) -> Column:
    """The non-null values of `values`, in order, as an array (the reasons a row earned)."""
    return F.filter(F.array(*values), lambda value: value.isNotNull())


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, settings: Settings, day: dt.date, staging: Path) -> None:
        super().__init__(settings, day, staging)
        self._resources = ExitStack()
        self.spark: SparkSession = self._resources.enter_context(
            spark_job(settings, f"audotics-refine-events-{day}")
        )
        self._cached: list[DataFrame] = []

    def close(self) -> None:
        self._release()
        self._resources.close()

    def _cache(self, rows: DataFrame) -> DataFrame:
        """`rows`, kept (in memory, else on the executors' disks) until `_release`."""
        self._cached.append(rows.persist(StorageLevel.MEMORY_AND_DISK))
        return rows

    def _release(self) -> None:
        while self._cached:
            self._cached.pop().unpersist()

    # --- judge ---------------------------------------------------------------------------------

    def prepare(self, run_id: str) -> None:
        """Nothing: the verdicts and the duplicates are one Spark plan, run by `judge`."""

    def judge(self, run_id: str) -> DayCounts:
        users, tracks = self._catalog()
        # Lines are split by the way their JSON is read, and the verdicts feed two folders.
        parsed = self._cache(_parsed(_line_checks(self._bronze())))
        verdicts = self._cache(self._judged(parsed, users, tracks))
        now = _instant(dt.datetime.now(dt.UTC))  # one processing time for the run
        stamp = {"run_id": F.lit(run_id), "landing_date": F.lit(self.day)}
        quarantine = verdicts.where(F.size("reasons") > 0).select(
            *LINE,
            # point 6: Python's errors="replace", and NUL replaced too
            F.replace(F.make_valid_utf8(F.col("raw").cast("string")), F.lit("\0"), F.lit("\ufffd"))
            .alias("raw"),
            "reasons", stamp["run_id"].alias("run_id"), now.alias("quarantined_at"),
            stamp["landing_date"].alias("landing_date"),
        )  # fmt: skip
        candidates = verdicts.where(F.size("reasons") == 0).select(
            *(
                now.alias(name) if name == "ingested_at"
                else stamp[name].alias(name) if name in stamp
                else F.to_date("ts").alias(name) if name == "event_date"
                else F.col(name)
                for name in STAGED["candidates"].names
            )
        )  # fmt: skip
        self._stage("quarantine", quarantine)
        self._stage("candidates", candidates)
        held = self._held_by_other_days(self._staged_frame("candidates"))
        self._stage("duplicates", self._duplicates(self._staged_frame("candidates"), held))
        counts = self._counts(verdicts, held)
        self._release()
        return counts

    def commit(self, metadata: dict[str, str]) -> None:
        predicate = bronze.day_predicate(self.day)
        write_table(
            self._staged_frame("quarantine"), self.settings, tables.QUARANTINE_EVENTS,
            mode="overwrite", predicate=predicate, metadata=metadata,
        )  # fmt: skip
        # Silver is partitioned by event_date: `write_table` replaces whole partitions only, and
        # the day's rows share theirs with other landing days. Spark writes the day's silver
        # rows; delta-rs replaces the day's rows with them (a data predicate), streamed.
        silver = self._staged_frame("candidates").join(
            self._staged_frame("duplicates"), LINE, "left_anti"
        )
        folder = self.staging / "silver"
        silver.select(*tables.SILVER_EVENTS.schema.names).write.parquet(str(folder))
        rows = pads.dataset(folder, schema=tables.SILVER_EVENTS.schema, format="parquet")
        lake.write_arrow(
            self.settings, tables.SILVER_EVENTS, rows.scanner(batch_size=SILVER_BATCH).to_reader(),
            mode="overwrite", predicate=predicate, metadata=metadata,
        )  # fmt: skip

    # --- inputs --------------------------------------------------------------------------------

    def _bronze(self) -> DataFrame:
        rows = read_table(
            self.spark, self.settings, tables.BRONZE_EVENTS,
            partition_filter=bronze.day_predicate(self.day),
        )  # fmt: skip
        return rows.select(*LINE, "raw", "raw_bytes")

    def _catalog(self) -> tuple[DataFrame, DataFrame]:
        """The current users and tracks, one row per id (else the join would copy events)."""
        frames = []
        for table, key, value, alias in (
            (tables.SILVER_USERS, "user_id", "created_at", "user_created_at"),
            (tables.SILVER_TRACKS, "track_id", "duration_ms", "track_duration_ms"),
        ):
            if not exists(self.settings, table):
                raise EngineError(f"{table} does not exist yet: run the catalog extract first")
            rows = read_table(self.spark, self.settings, table).where("is_current")
            rows = rows.select(key, F.col(value).alias(alias))
            (repeated,) = rows.agg(F.count("*") - F.count_distinct(key)).first()
            if repeated:
                raise EngineError(
                    f"{table} has {repeated} {key} values with more than one current row: "
                    "the catalog extract must keep exactly one (is_current)"
                )
            frames.append(rows)
        return frames[0], frames[1]

    def _file_limits(self, lines: DataFrame) -> DataFrame:
        """max_ts of each of the day's source files: its hour's end plus the clock skew."""
        skew = dt.timedelta(minutes=self.settings.max_clock_skew_minutes)
        names = [row[0] for row in lines.select("source_file").distinct().collect()]
        limits = [(name, _micros(arrival_hour_end(name, self.day) + skew)) for name in names]
        frame = self.spark.createDataFrame(limits, "source_file string, max_ts bigint")
        return F.broadcast(
            frame.select("source_file", F.timestamp_micros("max_ts").alias("max_ts"))
        )

    # --- the rules, a step each ----------------------------------------------------------------

    def _judged(self, parsed: DataFrame, users: DataFrame, tracks: DataFrame) -> DataFrame:
        """Points 1 to 4 and 7 over the parsed lines: `reasons` and `unknown_fields`."""
        fields = _field_reasons(_field_checks(_json_checks(parsed)))
        return _verdicts(self._helpers(_timestamps(fields), users, tracks))

    def _helpers(self, rows: DataFrame, users: DataFrame, tracks: DataFrame) -> DataFrame:
        """Point 4's helper columns; the catalog only for rows the value rules will read."""
        judged = F.col("ts").isNotNull()
        rows = rows.join(self._file_limits(rows), "source_file", "left")
        rows = rows.join(users, (rows.user_id == users.user_id) & judged, "left").drop(
            users.user_id
        )
        rows = rows.join(tracks, (rows.track_id == tracks.track_id) & judged, "left").drop(
            tracks.track_id
        )
        return rows.select(
            "*",
            (F.col("track_duration_ms") + rules.MS_PLAYED_SLACK).alias("max_ms_played"),
            _instant(rules.min_ts(self.day, self.settings.lateness_days)).alias("min_ts"),
            _instant(rules.launch_ts(self.settings.service_launch_date)).alias("launch_ts"),
        )

    # --- point 5 -------------------------------------------------------------------------------

    def _held_by_other_days(self, candidates: DataFrame) -> DataFrame:
        """The candidates' event ids silver holds from another landing day, in the partitions
        the day's rows can share."""
        if not exists(self.settings, tables.SILVER_EVENTS):
            return self.spark.createDataFrame([], "event_id string")
        first, last = rules.silver_window(self.day, self.settings.lateness_days)
        silver = read_table(
            self.spark, self.settings, tables.SILVER_EVENTS,
            partition_filter=f"event_date >= '{first}' AND event_date <= '{last}'",
        )  # fmt: skip
        other_days = silver.where(F.col("landing_date") != F.lit(self.day)).select("event_id")
        return other_days.join(candidates.select("event_id"), "event_id", "left_semi").distinct()

    @staticmethod
    def _duplicates(candidates: DataFrame, held: DataFrame) -> DataFrame:
        """All but the first line of each event id, and every line of an id held elsewhere."""
        first = Window.partitionBy("event_id").orderBy(*LINE)
        repeated = candidates.select(*LINE, F.row_number().over(first).alias("n")).where("n > 1")
        elsewhere = candidates.join(held, "event_id", "left_semi")
        return repeated.select(*LINE).union(elsewhere.select(*LINE)).distinct()

    # --- staging and counts --------------------------------------------------------------------

    def _stage(self, name: str, rows: DataFrame) -> None:
        """Write a staged folder with exactly the columns and types of STAGED[name]."""
        columns = [F.col(f.name).cast(f.dataType) for f in _spark_schema(name).fields]
        rows.select(*columns).write.parquet(str(self.staging / name))

    def staged(self, name: str) -> pa.RecordBatchReader:
        folder = pads.dataset(self.staging / name, schema=STAGED[name], format="parquet")
        return folder.scanner(batch_size=SILVER_BATCH).to_reader()

    def _staged_frame(self, name: str) -> DataFrame:
        return self.spark.read.schema(_spark_schema(name)).parquet(str(self.staging / name))

    def _counts(self, verdicts: DataFrame, held: DataFrame) -> DataFrame:
        counts = DayCounts()
        # Point 7, from the judged lines (the staged rows do not keep the keys).
        counts.bronze_rows = verdicts.count()
        drift = verdicts.select(F.explode("unknown_fields").alias("key"))
        counts.unknown_fields.update(dict(drift.groupBy("key").count().collect()))
        # Point 8.
        quarantine = self._staged_frame("quarantine")
        family = F.transform("reasons", lambda reason: F.substring_index(reason, ":", 1))
        families = quarantine.select(F.explode(F.array_distinct(family)).alias("family"))
        for family, rows in families.groupBy("family").count().collect():
            counts.reasons[family] = rows
        counts.quarantine_rows = quarantine.count()
        # The gates' profile of the candidates.
        candidates = self._staged_frame("candidates")
        columns = counts.silver_columns
        profile = candidates.agg(
            F.count("*").alias("_rows"),
            F.count_if(~F.col("event_type").isin(*EVENT_TYPES)).alias("_unknown_types"),
            *(F.count_if(F.col(name).isNull()).alias(name) for name in columns),
        ).first()
        counts.candidate_rows = profile["_rows"]
        if counts.candidate_rows:
            counts.silver_nulls.update({name: profile[name] for name in columns})
        counts.silver_unknown_event_types = profile["_unknown_types"]
        counts.duplicate_rows = self._staged_frame("duplicates").count()
        kept = candidates.join(held, "event_id", "left_anti")
        counts.silver_event_ids = kept.select("event_id").distinct().count()
        return counts


def _spark_schema(name: str) -> T.StructType:
    return from_arrow_schema(STAGED[name])


# --- point 1: the line ---------------------------------------------------------------------------


def _line_checks(rows: DataFrame) -> DataFrame:
    """Cut, not UTF-8, NUL: decided on the bytes; `text` is only read when none applies."""
    return rows.select(
        *LINE, "raw",
        F.coalesce(F.col("raw_bytes") > F.octet_length("raw"), F.lit(False)).alias("cut"),
        (~F.is_valid_utf8(F.col("raw").cast("string"))).alias("invalid_utf8"),
        F.contains(F.col("raw"), F.lit(b"\x00")).alias("nul"),
        F.col("raw").cast("string").alias("text"),
    )  # fmt: skip


def _parsed(lines: DataFrame) -> DataFrame:
    """`value`: the line's JSON value as a VARIANT when Jackson reads it as one whole value (the
    fast way); NULL for a line that needs the exact way (`readable`) or is not text at all."""
    readable = ~F.col("cut") & ~F.col("invalid_utf8") & ~F.col("nul")
    text = F.col("text")
    in_array = F.try_parse_json(F.concat(F.lit("["), text, F.lit("]")))
    in_object = F.try_parse_json(F.concat(F.lit('{"k":'), text, F.lit("}")))
    value = F.when(readable & in_object.isNotNull(), F.variant_get(in_array, "$[0]", "variant"))
    return lines.select("*", readable.alias("readable"), value.alias("value"))


def _json_checks(parsed: DataFrame) -> DataFrame:
    """Point 1's JSON checks: `valid`, `is_object`, and for point 2 `value` (fast way) or
    `members` (exact way). `parsed` is read twice (persisted), never joined whole."""
    exact_way = F.col("readable") & F.col("value").isNull()
    fast = parsed.where(~exact_way).select(
        "*",
        F.col("value").isNotNull().alias("valid"),
        F.coalesce(F.schema_of_variant("value").startswith("OBJECT<"), F.lit(False))
        .alias("is_object"),
        F.lit(None).cast(MEMBERS).alias("members"),
    )  # fmt: skip
    hard = parsed.where(exact_way)
    exact = hard.join(_exact_json(hard), LINE, "left").select(
        *parsed.columns,
        F.coalesce("exact_valid", F.lit(False)).alias("valid"),
        F.coalesce(F.col("exact_valid") & F.col("exact_object"), F.lit(False)).alias("is_object"),
        "members",
    )  # fmt: skip
    return fast.unionByName(exact)


def _exact_json(lines: DataFrame) -> DataFrame:
    """RFC 8259, exactly, by tokens and window functions (see the module): per line
    `exact_valid`, `exact_object` and `members`, the top-level (key, first token of value)."""
    tokens = lines.select(
        *LINE, F.posexplode(F.regexp_extract_all("text", F.lit(JSON_TOKEN), 0)).alias("pos", "tok")
    ).where(~F.substring("tok", 1, 1).isin(" ", "\t", "\n", "\r"))
    tok = F.col("tok")
    kind = (
        F.when(tok.isin("{", "["), "open")
        .when(tok.isin("}", "]"), "close")
        .when(tok.isin(":", ","), tok)
        .when((F.length(tok) >= 2) & tok.startswith('"'), "string")
        .when(tok.isin("true", "false", "null") | tok.rlike("^-?[0-9]"), "scalar")
        .otherwise("bad")
    )
    line = Window.partitionBy(*LINE).orderBy("pos")
    so_far = line.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    step = F.when(kind == "open", 1).when(kind == "close", -1).otherwise(0)
    tokens = tokens.select("*", kind.alias("kind"), step.alias("step"))
    tokens = tokens.select("*", F.sum("step").over(so_far).alias("depth"))  # after the token
    # A token's level: an opening bracket's is the one it opens, any other's the one it is in.
    level = F.when(F.col("kind") == "open", F.col("depth")).otherwise(
        F.col("depth") - F.col("step")
    )
    tokens = tokens.select("*", level.alias("level"))
    at_level = (
        Window.partitionBy(*LINE, "level")
        .orderBy("pos")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    opened = F.when(F.col("kind") == "open", tok)
    tokens = tokens.select("*", F.last(opened, ignorenulls=True).over(at_level).alias("inside"))
    prev = {c: F.lag(c).over(line) for c in ("tok", "kind", "inside", "depth")}
    is_key = (F.col("kind") == "string") & (
        (prev["tok"] == "{") | ((prev["tok"] == ",") & (F.col("inside") == "{"))
    )
    # NULL (no previous token) is never a pass: bool_and would skip it.
    tokens = tokens.select("*", F.coalesce(is_key, F.lit(False)).alias("is_key"))
    prev_is_key = F.lag("is_key").over(line)
    value_start = F.col("kind").isin("open", "string", "scalar")
    after_value = prev["kind"].isin("scalar", "string", "close") & ~prev_is_key
    allowed = (
        F.when(prev["tok"].isNull(), value_start)
        .when(prev["tok"] == "{", (F.col("kind") == "string") | (tok == "}"))
        .when(prev["tok"] == "[", value_start | (tok == "]"))
        .when(prev["tok"] == ":", value_start)
        .when(prev["tok"] == ",", F.when(prev["inside"] == "{", F.col("kind") == "string")
              .when(prev["inside"] == "[", value_start).otherwise(False))
        .when(prev_is_key, tok == ":")
        .when(after_value, (prev["depth"] > 0) & F.col("kind").isin(",", "close"))
        .otherwise(False)
    )  # fmt: skip
    closes = (F.col("kind") != "close") | (
        ((tok == "}") & (F.col("inside") == "{")) | ((tok == "]") & (F.col("inside") == "["))
    )
    legal = F.coalesce(
        (F.col("kind") != "bad") & (F.col("depth") >= 0) & closes & allowed, F.lit(False)
    )
    ends = (
        F.col("kind").isin("scalar", "string", "close") & ~F.col("is_key") & (F.col("depth") == 0)
    )
    member = F.when(
        F.col("is_key") & (F.col("level") == 1),
        F.struct("pos", tok.alias("key"), F.lead("tok", 2).over(line).alias("value")),
    )
    judged = tokens.select(*LINE, "pos", "tok", legal.alias("legal"), ends.alias("ends"),
                           member.alias("member"))  # fmt: skip
    return judged.groupBy(*LINE).agg(
        (F.bool_and("legal") & F.max_by("ends", "pos")).alias("exact_valid"),
        (F.min_by("tok", "pos") == "{").alias("exact_object"),
        F.array_sort(F.collect_list("member")).alias("members"),
    )


# --- point 2: the fields -------------------------------------------------------------------------


def _json_type(fast: Column, token: Column) -> Column:
    """`string`, `int64`, `null`, another JSON type, or NULL when absent: from the VARIANT's
    type (fast) or from the value's first token (exact)."""
    by_token = (
        F.when(token == "null", "null")
        .when(token.startswith('"'), "string")
        .when(token.rlike(INTEGER), "int64")
        .otherwise("other")
    )
    by_variant = (
        F.when(fast == "STRING", "string")
        .when(fast == "BIGINT", "int64")
        .when(fast == "VOID", "null")
        .otherwise("other")
    )
    return F.when(fast.isNotNull(), by_variant).when(token.isNotNull(), by_token)


def _field_checks(rows: DataFrame) -> DataFrame:
    """Point 2: each field's JSON type `t_<f>` and value `v_<f>` (text), then its one reason
    `r_<f>`. One step per stage of the derivation: each expression is evaluated once."""
    decoded = F.transform(
        "members",
        lambda m: F.struct(_decoded(m["key"]).alias("key"), m["value"].alias("value")),
    )
    rows = rows.withColumn("members", decoded)
    keys = F.when(F.col("value").isNotNull(), F.json_object_keys("text")).otherwise(
        F.transform("members", lambda m: m["key"])
    )
    rows = rows.select("*", F.when(F.col("is_object"), keys).alias("keys"))
    # The field's value: a VARIANT (fast) or its first token (exact), and its occurrences.
    rows = rows.select("*", *(
        column
        for name in rules.FIELD_NAMES
        for column in (
            F.try_variant_get("value", f"$.{name}", "variant").alias(f"s_{name}"),
            F.get(F.filter("members", _has_key(name)), 0)["value"].alias(f"k_{name}"),
            F.size(F.filter("keys", _is(name))).alias(f"n_{name}"),
        )
    ))  # fmt: skip
    rows = rows.select("*", *(
        _json_type(F.schema_of_variant(f"s_{name}"), F.col(f"k_{name}")).alias(f"t_{name}")
        for name in rules.FIELD_NAMES
    ))  # fmt: skip
    rows = rows.select("*", *(_value(field).alias(f"v_{field.name}") for field in rules.FIELDS))
    return rows.select("*", *(_reason(field).alias(f"r_{field.name}") for field in rules.FIELDS))


def _has_key(name: str) -> Callable[[Column], Column]:
    return lambda member: member["key"] == F.lit(name)


def _is(name: str) -> Callable[[Column], Column]:
    return lambda key: key == F.lit(name)


def _decoded(token: Column) -> Column:
    """The text of a JSON string token."""
    return F.variant_get(F.try_parse_json(token), "$", "string")


def _value(field: rules.Field) -> Column:
    """The field's value as text when it has the field's kind: a string, or an integer within
    64 bits; else NULL."""
    variant, token = F.col(f"s_{field.name}"), F.col(f"k_{field.name}")
    if field.kind is rules.Kind.INT64:
        number = F.coalesce(
            F.try_variant_get(variant, "$", "bigint"),
            F.when(token.rlike(INTEGER), token).try_cast("bigint"),
        )
        return F.when(F.col(f"t_{field.name}") == "int64", number.cast("string"))
    text = F.coalesce(
        F.try_variant_get(variant, "$", "string"), F.when(token.startswith('"'), _decoded(token))
    )
    return F.when(F.col(f"t_{field.name}") == "string", text)


def _reason(field: rules.Field) -> Column:
    """The field's one reason (or NULL): given twice, missing (absent or null), wrong type."""
    name, kind = field.name, F.col(f"t_{field.name}")
    missing = rules.field_reason(rules.MISSING_FIELD, name) if field.required else None
    return (
        F.when(F.col(f"n_{name}") > 1, F.lit(rules.field_reason(rules.DUPLICATE_FIELD, name)))
        .when(kind.isNull() | (kind == "null"), F.lit(missing))
        .when(F.col(f"v_{name}").isNull(), F.lit(rules.field_reason(rules.WRONG_TYPE, name)))
    )


def _field_reasons(rows: DataFrame) -> DataFrame:
    """The field checks' reasons, then `nul_byte` once if a field's text holds U+0000."""
    strings = [F.col(f"v_{f.name}") for f in rules.FIELDS if f.kind is not rules.Kind.INT64]
    nul = F.when(F.exists(F.array(*strings), lambda v: F.contains(v, F.lit("\0"))), rules.NUL_BYTE)
    reasons = _present([*(F.col(f"r_{f.name}") for f in rules.FIELDS), nul])
    return rows.select("*", F.when(F.col("is_object"), reasons).alias("field_reasons"))


# --- point 3: the timestamp ----------------------------------------------------------------------


def _timestamps(rows: DataFrame) -> DataFrame:
    """`ts` as the instant it names (no offset: UTC; beyond microseconds: truncated), NULL when
    it does not match the grammar or names no calendar day; the typed fields beside it."""
    text = F.col("v_ts")
    part = [F.nullif(F.regexp_extract(text, TS_PARTS, i), F.lit("")) for i in range(12)]
    seconds = F.concat(F.coalesce(part[6], F.lit("00")), F.lit("."),
                       F.rpad(F.coalesce(part[7], F.lit("")), 6, "0"))  # fmt: skip
    local = F.try_make_timestamp(
        part[1].cast("int"), part[2].cast("int"), part[3].cast("int"),
        F.coalesce(part[4], F.lit("0")).cast("int"), F.coalesce(part[5], F.lit("0")).cast("int"),
        seconds.cast("decimal(16,6)"), F.lit("UTC"),
    )  # fmt: skip
    sign = F.when(part[9] == "-", -1).otherwise(1)
    offset_minutes = F.when(part[9].isNull(), 0).otherwise(
        sign * (part[10].cast("int") * 60 + F.coalesce(part[11].cast("int"), F.lit(0)))
    )
    instant = F.timestamp_micros(F.unix_micros(local) - offset_minutes.cast("bigint") * 60_000_000)
    matches = F.expr(rules.SPARK.full_match("v_ts", rules.ISO_TIMESTAMP))
    ts = F.when((F.size("field_reasons") == 0) & matches, instant)
    typed = [
        F.col(f"v_{f.name}").try_cast("bigint").alias(f.name) if f.kind is rules.Kind.INT64
        else F.col(f"v_{f.name}").alias(f.name)
        for f in rules.FIELDS if f.kind is not rules.Kind.TIMESTAMP
    ]  # fmt: skip
    return rows.select("*", ts.alias("ts"), *typed)


# --- points 1 to 4, 7: the verdict ---------------------------------------------------------------


def _verdicts(rows: DataFrame) -> DataFrame:
    """Each line's reasons (empty: a silver candidate) and its unknown fields."""
    line_reasons = _present([
        F.when(F.col("invalid_utf8"), F.lit(rules.INVALID_UTF8)),
        F.when(F.col("nul"), F.lit(rules.NUL_BYTE)),
    ])  # fmt: skip
    value_reasons = _present(
        [F.when(F.expr(rule.fails), F.lit(rule.reason)) for rule in rules.value_rules(rules.SPARK)]
    )
    reasons = (
        F.when(F.col("cut"), F.array(F.lit(rules.LINE_TOO_LONG)))
        .when(F.col("invalid_utf8") | F.col("nul"), line_reasons)
        .when(~F.col("valid"), F.array(F.lit(rules.MALFORMED_JSON)))
        .when(~F.col("is_object"), F.array(F.lit(rules.NOT_A_JSON_OBJECT)))
        .when(F.size("field_reasons") > 0, F.col("field_reasons"))
        .when(F.col("ts").isNull(), F.array(F.lit(rules.UNREADABLE_TS)))
        .otherwise(value_reasons)
    )
    unknown = F.array_distinct(F.filter("keys", lambda k: ~k.isin(*rules.FIELD_NAMES)))
    point_1_passed = ~F.col("cut") & ~F.col("invalid_utf8") & ~F.col("nul") & F.col("valid")
    return rows.select(
        *LINE,
        "raw",
        *rules.FIELD_NAMES,
        reasons.alias("reasons"),
        F.when(point_1_passed & F.col("is_object"), unknown).alias("unknown_fields"),
    )
