"""The embedded engine: DuckDB in process, one landing day streamed through in bounded batches.

Bronze is read a record batch at a time, in no particular order (a streamed Delta write keeps
none), so duplicates are decided once the day is seen, on (source_file, line_number). Each
batch is decoded (`try(decode(raw))`: NULL for invalid UTF-8), checked with DuckDB's JSON
functions (`json_valid` guards every extraction: they raise on malformed text), typed
(`TRY_CAST`, after the timestamp grammar: nothing a line holds can raise), joined with the
current catalog and judged by `rules.value_rules(DUCKDB)`. The judged rows are staged in DuckDB
tables (buffer-managed: past MEMORY_LIMIT they spill to disk, so memory is the limit and the
batch, never the day's rows), and the commit streams silver and quarantine from them into the
lake without another copy.

yyjson, DuckDB's parser, accepts NaN/Infinity and trailing commas; the rules do not. Outside
strings those need a letter no strict JSON has there, or a comma before a closing bracket, so a
line whose fields all check out, that has no other keys and ends in `}` can only hide a
trailing comma right before it (a cheap test); the rare other lines get the exact test, on the
text with its strings blanked out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from audotics.vocabulary import EVENT_TYPES
from ingestion import bronze, rules
from ingestion.engines import LINES, STAGED, DayCounts, Engine, EngineError
from ingestion.landing import arrival_hour_end

SCAN_ROWS = 8_192  # rows per Arrow slice handed to DuckDB: slices are its parallel units
MEMORY_LIMIT = "512MB"  # DuckDB spills to disk beyond this (its staged tables too)
COMMIT_MEMORY_LIMIT = "256MB"  # while the commit streams out: the lake writer needs the rest
COMMIT_BATCH = 65_536  # rows per record batch streamed into the lake
READ_BUFFER = 8 << 20  # bytes of a lake file read at a time
BRONZE_COLUMNS_READ = ("source_file", "line_number", "raw", "raw_bytes")
BRONZE = pa.schema([tables.BRONZE_EVENTS.schema.field(c) for c in BRONZE_COLUMNS_READ])
LINE = ", ".join(LINES.names)
SILVER_IDS = pa.schema([tables.SILVER_EVENTS.schema.field(c) for c in ("event_id", "landing_date")])
JSON_SPACE = "' ' || chr(9) || chr(10) || chr(13)"
# Outside strings, strict JSON has no i/I, no "na" (NaN, Infinity, inf) and no comma before a
# closing bracket. Strings (well-formed, as json_valid passed) are blanked out first.
STRING_TOKEN = r"""'"([^"\\]|\\.)*"'"""
LENIENT_TOKEN = r"""'[iI]|[nN][aA]|,[ \t\r\n]*[]}]'"""
_space_before_brace = " OR ".join(
    f"suffix(text, {space} || '}}')" for space in ("' '", "chr(9)", "chr(10)", "chr(13)")
)


def _instant(value: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{value.isoformat()}'"


def _file_batches(
    fragments: Iterable[pads.ParquetFileFragment], schema: pa.Schema, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The `schema` columns of lake files, page by page (a dataset scan holds whole row groups,
    and delta-rs writes a file as one, and reads several batches ahead). A column a file does
    not have yet (it predates it) is null; a file's own types (delta-rs rewrites some with view
    types) are cast to the table's."""
    for fragment in fragments:
        source = fragment.filesystem.open_input_file(fragment.path)
        with pq.ParquetFile(source, pre_buffer=False, buffer_size=READ_BUFFER) as file:
            present = [name for name in schema.names if name in file.schema_arrow.names]
            for batch in file.iter_batches(batch_rows, columns=present):
                columns = [
                    batch.column(f.name) if f.name in present else pa.nulls(batch.num_rows, f.type)
                    for f in schema
                ]
                yield pa.RecordBatch.from_arrays(columns, names=schema.names).cast(schema)


def _field_reason(field: rules.Field) -> str:
    """The one field-check reason of `field` (JSON type `t_<f>`, text `v_<f>`), or NULL."""
    kind, value = f"t_{field.name}", f"v_{field.name}"
    if field.kind is rules.Kind.INT64:
        good = f"{kind} IN ('BIGINT', 'UBIGINT') AND TRY_CAST({value} AS BIGINT) IS NOT NULL"
    else:
        good = f"{kind} = 'VARCHAR'"
    missing = "NULL"
    if field.required:
        missing = f"'{rules.field_reason(rules.MISSING_FIELD, field.name)}'"
    return (
        f"CASE WHEN irregular AND len(list_filter(keys, lambda k: k = '{field.name}')) > 1 "
        f"THEN '{rules.field_reason(rules.DUPLICATE_FIELD, field.name)}' "
        f"WHEN {kind} IS NULL OR {kind} = 'NULL' THEN {missing} "
        f"WHEN NOT ({good}) THEN '{rules.field_reason(rules.WRONG_TYPE, field.name)}' END"
    )


def _reasons(candidates: list[str]) -> str:
    return f"list_filter([{', '.join(candidates)}], lambda r: r IS NOT NULL)"


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(rules.sql_string(value) for value in values) + "]"


def verdict_sql(settings: Settings, day: dt.date) -> str:
    """Every bronze row of `bronze_batch` with its reasons (empty: a silver candidate), typed,
    and for a quarantined row its text (`undecoded`: the bytes, when not UTF-8)."""
    paths = _list(tuple(f"$.{name}" for name in rules.FIELD_NAMES))
    per_field = ",\n        ".join(
        f"types[{i}] AS t_{name}, vals[{i}] AS v_{name}"
        for i, name in enumerate(rules.FIELD_NAMES, 1)
    )
    field_reasons = _reasons(
        [
            *(_field_reason(field) for field in rules.FIELDS),
            rf"CASE WHEN contains(text, '\u0000') AND list_bool_or("
            f"list_transform(vals, lambda v: contains(v, chr(0)))) THEN '{rules.NUL_BYTE}' END",
        ]
    )
    typed = ",\n        ".join(
        f"TRY_CAST(v_{f.name} AS BIGINT) AS {f.name}"
        if f.kind is rules.Kind.INT64
        else f"v_{f.name} AS {f.name}"
        for f in rules.FIELDS
        if f.kind is not rules.Kind.TIMESTAMP
    )
    line_reasons = _reasons(
        [
            f"CASE WHEN invalid_utf8 THEN '{rules.INVALID_UTF8}' END",
            f"CASE WHEN nul THEN '{rules.NUL_BYTE}' END",
        ]
    )
    value_reasons = _reasons(
        [f"CASE WHEN {r.fails} THEN '{r.reason}' END" for r in rules.value_rules(rules.DUCKDB)]
    )
    return f"""
WITH lines AS (
    SELECT source_file, line_number, raw,
        coalesce(raw_bytes > octet_length(raw), false) AS cut,
        try(decode(raw)) AS text
    FROM bronze_batch
), bytes AS (
    SELECT *, text IS NULL AS invalid_utf8,
        CASE WHEN text IS NULL THEN regexp_matches(hex(raw), '^(..)*?00')
            ELSE contains(text, chr(0)) END AS nul
    FROM lines
), docs AS (
    SELECT *, NOT cut AND NOT invalid_utf8 AND NOT nul AND json_valid(text) AS valid
    FROM bytes
), objects AS (
    SELECT *, valid AND left(ltrim(text, {JSON_SPACE}), 1) = '{{' AS is_object FROM docs
), fields AS (
    SELECT *,
        CASE WHEN is_object THEN len(json_keys(text)) END AS key_count,
        CASE WHEN is_object THEN json_type(text, {paths}) END AS types,
        CASE WHEN is_object THEN json_extract_string(text, {paths}) END AS vals
    FROM objects
), columns AS (
    -- irregular: a key outside FIELDS, or one given twice (rare; the exact tests run on it)
    SELECT *, is_object AND key_count <> list_count(types) AS irregular,
        {per_field}
    FROM fields
), checked AS (
    SELECT *,
        CASE WHEN irregular THEN list_distinct(
            list_filter(keys, lambda k: NOT list_contains({_list(rules.FIELD_NAMES)}, k))) END
            AS unknown_fields
    FROM (SELECT *, CASE WHEN irregular THEN json_keys(text) END AS keys FROM columns)
), structural AS (
    SELECT *, CASE WHEN is_object THEN {field_reasons} END AS field_reasons
    FROM checked
), strict AS (
    SELECT *,
        CASE WHEN NOT valid THEN false
            WHEN NOT is_object OR irregular OR len(field_reasons) > 0
                OR NOT suffix(text, '}}') OR {_space_before_brace}
            THEN regexp_matches(regexp_replace(text, {STRING_TOKEN}, '""', 'g'), {LENIENT_TOKEN})
            ELSE suffix(text, ',}}')
        END AS lenient
    FROM structural
), typed AS (
    SELECT source_file, line_number, raw, text, cut, invalid_utf8, nul, valid, lenient,
        is_object, field_reasons, unknown_fields,
        CASE WHEN len(field_reasons) = 0
            AND regexp_full_match(v_ts, {rules.sql_string(rules.ISO_TIMESTAMP)})
            THEN TRY_CAST(v_ts AS TIMESTAMPTZ) END AS ts,
        {typed}
    FROM strict
), judged AS (
    SELECT t.*, f.max_ts, u.created_at AS user_created_at, k.duration_ms AS track_duration_ms,
        k.duration_ms + {rules.MS_PLAYED_SLACK} AS max_ms_played,
        {_instant(rules.min_ts(day, settings.lateness_days))} AS min_ts,
        {_instant(rules.launch_ts(settings.service_launch_date))} AS launch_ts
    FROM typed t
    LEFT JOIN batch_files f USING (source_file)
    LEFT JOIN users u ON u.user_id = t.user_id AND t.ts IS NOT NULL
    LEFT JOIN tracks k ON k.track_id = t.track_id AND t.ts IS NOT NULL
), verdicts AS (
    SELECT *,
        CASE
            WHEN cut THEN ['{rules.LINE_TOO_LONG}']
            WHEN invalid_utf8 OR nul THEN {line_reasons}
            WHEN NOT valid OR lenient THEN ['{rules.MALFORMED_JSON}']
            WHEN NOT is_object THEN ['{rules.NOT_A_JSON_OBJECT}']
            WHEN len(field_reasons) > 0 THEN field_reasons
            WHEN ts IS NULL THEN ['{rules.UNREADABLE_TS}']
            ELSE {value_reasons}
        END AS reasons
    FROM judged
)
SELECT source_file, line_number, {", ".join(rules.FIELD_NAMES)}, reasons,
    CASE WHEN NOT lenient AND len(unknown_fields) > 0 THEN unknown_fields END AS unknown_fields,
    CASE WHEN len(reasons) > 0 THEN replace(text, chr(0), '{chr(0xFFFD)}') END AS text,
    CASE WHEN text IS NULL THEN raw END AS undecoded
FROM verdicts
"""


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(
        self, settings: Settings, day: dt.date, staging: Path, batch_rows: int | None = None
    ) -> None:
        super().__init__(settings, day, staging)
        # As bronze lands them: by default 100k lines, about 30 MB, 150 MB inside DuckDB.
        self.batch_rows = batch_rows or settings.ingest_batch_lines
        spill = Path(settings.state_dir) / "duckdb"
        spill.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(
            ":memory:",  # its tables spill to temp_directory past memory_limit
            config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill)},
        )
        self._run("SET TimeZone = 'UTC'")
        self._load_catalog()
        for name, schema in STAGED.items():  # the staged tables, typed as the lake's
            self.con.register("empty", schema.empty_table())
            self._run(f"CREATE TABLE {name} AS SELECT * FROM empty")
            self.con.unregister("empty")
        self.verdicts = verdict_sql(settings, day)
        self.skew = dt.timedelta(minutes=settings.max_clock_skew_minutes)
        self._files: dict[str, dt.datetime] = {}  # source_file -> max_ts

    def close(self) -> None:
        self.con.close()

    def judge(self, run_id: str) -> DayCounts:
        counts = DayCounts()
        now = dt.datetime.now(dt.UTC)
        for batch in self._bronze_batches():
            if batch.num_rows:
                self._judge_batch(batch, run_id, now, counts)
        self._run("DROP TABLE IF EXISTS verdicts")
        self._stage_duplicates(counts)
        self._profile(counts)
        return counts

    def staged(self, name: str) -> pa.RecordBatchReader:
        return self._stream(f"SELECT * FROM {name}", STAGED[name])

    def commit(self, metadata: dict[str, str]) -> None:
        self._run(f"SET memory_limit = '{COMMIT_MEMORY_LIMIT}'")
        silver = tables.SILVER_EVENTS.schema
        for table, query in (
            (tables.QUARANTINE_EVENTS, "SELECT * FROM quarantine"),
            (
                tables.SILVER_EVENTS,
                f"SELECT {', '.join(silver.names)} FROM candidates "
                f"ANTI JOIN duplicates USING ({LINE})",
            ),
        ):
            lake.write_arrow(
                self.settings, table, self._stream(query, table.schema),
                mode="overwrite", predicate=bronze.day_predicate(self.day), metadata=metadata,
            )  # fmt: skip

    def _stream(self, query: str, schema: pa.Schema) -> pa.RecordBatchReader:
        """The rows of `query`, batch by batch, typed exactly as `schema`. Read it to the end
        before the next query: DuckDB has one pending result per connection."""
        reader = self.con.sql(query).to_arrow_reader(COMMIT_BATCH)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))

    def _run(self, statement: str, params: list | None = None) -> None:
        """A statement without a result (DuckDB wants every result consumed)."""
        self.con.execute(statement, params).fetchall()

    def _load_catalog(self) -> None:
        """The current users and tracks, one row per id (else the join would copy events)."""
        for table, key, value in (
            (tables.SILVER_USERS, "user_id", "created_at"),
            (tables.SILVER_TRACKS, "track_id", "duration_ms"),
        ):
            self.con.register("catalog_rows", lake.read_current(self.settings, table, [key, value]))
            self._run(f"CREATE TABLE {table.name} AS SELECT {key}, {value} FROM catalog_rows")
            self.con.unregister("catalog_rows")
            ((repeated,),) = self.con.execute(
                f"SELECT count(*) - count(DISTINCT {key}) FROM {table.name}"
            ).fetchall()
            if repeated:
                raise EngineError(
                    f"{table} has {repeated} {key} values with more than one current row: "
                    "the catalog extract must keep exactly one (is_current)"
                )

    def _bronze_batches(self) -> Iterator[pa.RecordBatch]:
        scan = lake.dataset(self.settings, tables.BRONZE_EVENTS)
        day = scan.get_fragments(filter=pads.field("landing_date") == self.day)
        return _file_batches(day, BRONZE, self.batch_rows)

    def _register_files(self, batch: pa.RecordBatch) -> None:
        """max_ts of each source file of the batch: its hour's end plus clock skew."""
        names = pc.unique(batch.column("source_file")).to_pylist()
        for name in names:
            if name not in self._files:
                self._files[name] = arrival_hour_end(name, self.day) + self.skew
        files = pa.table(
            {
                "source_file": pa.array(names, pa.string()),
                "max_ts": pa.array([self._files[n] for n in names], tables.UTC_TIMESTAMP),
            }
        )
        self.con.register("batch_files", files)

    def _judge_batch(
        self, batch: pa.RecordBatch, run_id: str, now: dt.datetime, counts: DayCounts
    ) -> None:
        """Judge one bronze batch into the staged quarantine and candidates, counted."""
        counts.bronze_rows += batch.num_rows
        # DuckDB scans an Arrow table one record batch per thread at a time.
        slices = [batch.slice(at, SCAN_ROWS) for at in range(0, batch.num_rows, SCAN_ROWS)]
        self.con.register("bronze_batch", pa.Table.from_batches(slices))
        self._register_files(batch)
        self._run(f"CREATE OR REPLACE TEMP TABLE verdicts AS {self.verdicts}")
        self.con.register("batch_quarantine", self._quarantine(run_id, now))
        self._run("INSERT INTO quarantine SELECT * FROM batch_quarantine")
        fields = [name for name in tables.SILVER_EVENTS.schema.names if name in rules.FIELD_NAMES]
        self._run(
            f"""INSERT INTO candidates BY NAME
                SELECT {", ".join(fields)}, ?::TIMESTAMPTZ AS ingested_at, ?::VARCHAR AS run_id,
                    ?::DATE AS landing_date, CAST(ts AS DATE) AS event_date,
                    source_file, line_number
                FROM verdicts WHERE len(reasons) = 0""",
            [now, run_id, self.day],
        )
        self._count(counts)

    def _quarantine(self, run_id: str, now: dt.datetime) -> pa.Table:
        rows = self.con.sql(
            """SELECT source_file, line_number, text, reasons,
                    ?::VARCHAR AS run_id, ?::TIMESTAMPTZ AS quarantined_at,
                    ?::DATE AS landing_date, undecoded
                FROM verdicts WHERE len(reasons) > 0 ORDER BY source_file, line_number""",
            params=[run_id, now, self.day],
        ).to_arrow_table()
        text, undecoded = rows.column("text"), rows.column("undecoded")
        if undecoded.null_count < len(undecoded):  # Python's U+FFFD replacement, as before
            text = pa.array(
                [
                    data.decode("utf-8", errors="replace").replace("\0", "\ufffd")
                    if data is not None
                    else value
                    for value, data in zip(text.to_pylist(), undecoded.to_pylist(), strict=True)
                ],
                pa.string(),
            )
        schema = tables.QUARANTINE_EVENTS.schema
        columns = {**dict(zip(rows.column_names, rows.columns, strict=True)), "raw": text}
        return pa.table([columns[name] for name in schema.names], schema=schema)

    def _count(self, counts: DayCounts) -> None:
        for family, rows in self.con.execute(
            """SELECT f, count(*) FROM (SELECT unnest(list_distinct(
                    list_transform(reasons, lambda r: split_part(r, ':', 1)))) AS f FROM verdicts)
                GROUP BY f"""
        ).fetchall():
            counts.reasons[family] += rows
        for name, rows in self.con.execute(
            "SELECT k, count(*) FROM (SELECT unnest(unknown_fields) AS k FROM verdicts) GROUP BY k"
        ).fetchall():
            counts.unknown_fields[name] += rows

    def _stage_duplicates(self, counts: DayCounts) -> None:
        """Stage the LINES of the candidates that are duplicates (`rules`, point 5)."""
        self._held_by_other_days()
        self._run(
            f"""INSERT INTO duplicates
                SELECT {LINE} FROM candidates
                WHERE event_id IN (
                    SELECT event_id FROM candidates GROUP BY event_id HAVING count(*) > 1)
                QUALIFY row_number() OVER (
                    PARTITION BY event_id ORDER BY source_file, line_number) > 1
                UNION
                SELECT {LINE} FROM candidates WHERE event_id IN (SELECT event_id FROM held)"""
        )
        ((counts.duplicate_rows,),) = self.con.execute("SELECT count(*) FROM duplicates").fetchall()
        ((counts.silver_event_ids,),) = self.con.execute(
            """SELECT count(DISTINCT event_id) FROM candidates
                WHERE event_id NOT IN (SELECT event_id FROM held)"""
        ).fetchall()

    def _profile(self, counts: DayCounts) -> None:
        """The staged quarantine's rows, and what the gates check of silver in the candidates."""
        columns = [c for c in self.con.table("candidates").columns if c not in LINES.names]
        nulls = ", ".join(f"count(*) - count({c})" for c in columns)
        known = _list(EVENT_TYPES)
        ((rows, unknown_types, *null_counts),) = self.con.execute(
            f"""SELECT count(*), count(*) FILTER (
                    WHERE event_type IS NULL OR NOT list_contains({known}, event_type)), {nulls}
                FROM candidates"""
        ).fetchall()
        counts.candidate_rows, counts.silver_unknown_event_types = rows, unknown_types
        counts.silver_columns = columns
        counts.silver_nulls.update(dict(zip(columns, null_counts, strict=True)))
        ((counts.quarantine_rows,),) = self.con.execute(
            "SELECT count(*) FROM quarantine"
        ).fetchall()

    def _held_by_other_days(self) -> None:
        """Table `held`: the candidates' event ids silver holds from another landing day whose
        rows can share the day's partitions."""
        self._run("CREATE OR REPLACE TEMP TABLE held (event_id VARCHAR)")
        if not lake.exists(self.settings, tables.SILVER_EVENTS):
            return
        first, last = rules.silver_window(self.day, self.settings.lateness_days)
        scan = lake.dataset(self.settings, tables.SILVER_EVENTS)
        window = (pads.field("event_date") >= first) & (pads.field("event_date") <= last)
        # Partitions are pruned from the fragments; the landing date is compared by DuckDB.
        fragments = scan.get_fragments(filter=window)
        ids = _file_batches(fragments, SILVER_IDS, self.batch_rows)
        self.con.register("other_days", pa.RecordBatchReader.from_batches(SILVER_IDS, ids))
        self._run(
            """INSERT INTO held SELECT DISTINCT event_id FROM other_days
                WHERE landing_date <> ? AND event_id IN (SELECT event_id FROM candidates)""",
            [self.day],
        )
        self.con.unregister("other_days")
