"""The embedded engine: DuckDB in process, one landing day streamed through in bounded batches.

The day's bronze streams into one query, record batch by record batch, in no particular order
(a streamed Delta write keeps none), so duplicates are decided once the day is seen, on
(source_file, line_number). Each line is decoded (`try(decode(raw))`: NULL for invalid UTF-8),
checked with DuckDB's JSON functions (`json_valid` guards every extraction: they raise on
malformed text), typed (`TRY_CAST`, after the timestamp grammar: nothing a line holds can
raise), joined with the current catalog and judged by `rules.value_rules(DUCKDB)`. Every
verdict is staged once, in DuckDB's table `judged` (buffer-managed: past MEMORY_LIMIT it spills
to disk, so memory is bounded by the limit and the batch, never by the day's rows); the staged
`quarantine` and `candidates` are views of it, and the commit streams silver and quarantine
from them into the lake without another copy.

yyjson, DuckDB's parser, accepts NaN/Infinity and trailing commas; the rules do not. Outside
strings those need a letter no strict JSON has there, or a comma before a closing bracket, so a
line whose fields all check out, that has no other keys and ends in `}` can only hide a
trailing comma right before it (a cheap test); the rare other lines get the exact test, on the
text with its strings blanked out.
"""

from __future__ import annotations

import datetime as dt
import functools
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
from ingestion.engines import CANDIDATES, LINES, STAGED, DayCounts, Engine, EngineError
from ingestion.landing import arrival_hour_end

SCAN_ROWS = 8_192  # rows per record batch streamed into DuckDB: batches are its parallel units
MEMORY_LIMIT = "512MB"  # DuckDB spills to disk beyond this (its staged tables too)
COMMIT_MEMORY_LIMIT = "256MB"  # while the commit streams out: the lake writer needs the rest
COMMIT_BATCH = 65_536  # rows per record batch streamed into the lake
READ_BUFFER = 8 << 20  # bytes of a lake file read at a time
BRONZE_COLUMNS_READ = ("source_file", "line_number", "raw", "raw_bytes")
BRONZE = pa.schema([tables.BRONZE_EVENTS.schema.field(c) for c in BRONZE_COLUMNS_READ])
LINE = ", ".join(LINES.names)
SOURCE_FILES = pa.schema([tables.BRONZE_EVENTS.schema.field("source_file")])
DAY_FILES = pa.schema([("source_file", pa.string()), ("max_ts", tables.UTC_TIMESTAMP)])
LINE_COLUMNS = "source_file VARCHAR, line_number BIGINT"  # LINES, as DuckDB types
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
    """Every bronze row of `bronze` with its reasons (empty: a silver candidate), typed, and for
    a quarantined row its text (`undecoded`: the bytes, when not UTF-8)."""
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
    FROM bronze
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
    LEFT JOIN day_files f USING (source_file)
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


# The staged quarantine and candidates (STAGED), as views of the table of verdicts.
QUARANTINE_VIEW = """SELECT source_file, line_number, text AS raw, reasons, run_id,
    judged_at AS quarantined_at, landing_date, undecoded
FROM judged WHERE len(reasons) > 0"""
_DERIVED = {"ingested_at": "judged_at", "event_date": "CAST(ts AS DATE)"}
CANDIDATES_VIEW = (
    f"SELECT {', '.join(f'{_DERIVED.get(n, n)} AS {n}' for n in CANDIDATES.names)} "
    "FROM judged WHERE len(reasons) = 0"
)


def _decoded(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch of the quarantine view as `schema`: a line that is not UTF-8 gets its text from
    its bytes, each invalid sequence and each NUL replaced by U+FFFD (`rules` point 6)."""
    text, undecoded = batch.column("raw"), batch.column("undecoded")
    if undecoded.null_count < len(undecoded):
        text = pa.array(
            [
                data.decode("utf-8", errors="replace").replace("\0", "\ufffd")
                if data is not None
                else value
                for value, data in zip(text.to_pylist(), undecoded.to_pylist(), strict=True)
            ],
            pa.string(),
        )
    columns = [text if name == "raw" else batch.column(name) for name in schema.names]
    return pa.RecordBatch.from_arrays(columns, names=schema.names).cast(schema)


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(
        self, settings: Settings, day: dt.date, staging: Path, batch_rows: int | None = None
    ) -> None:
        super().__init__(settings, day, staging)
        self.batch_rows = min(batch_rows or settings.ingest_batch_lines, SCAN_ROWS)
        spill = Path(settings.state_dir) / "duckdb"
        spill.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(
            ":memory:",  # its tables spill to temp_directory past memory_limit
            config={
                "memory_limit": MEMORY_LIMIT,
                "temp_directory": str(spill),
                "preserve_insertion_order": False,  # no order is kept (see the module)
                # A stream's size is unknown to the planner, which may then build a join's hash
                # table on the day's lines: the joins are written probe side first, build second.
                "disabled_optimizers": "join_order,build_side_probe_side",
            },
        )
        self._run("SET TimeZone = 'UTC'")
        self._load_catalog()
        self.verdicts = verdict_sql(settings, day)
        # The table of verdicts, typed by the query on no lines.
        self.con.register("bronze", BRONZE.empty_table())
        self.con.register("day_files", DAY_FILES.empty_table())
        self._run(f"CREATE TABLE judged AS {self._judged()} LIMIT 0", [None, None, None])
        self.con.unregister("bronze")
        self._run(f"CREATE TABLE duplicates ({LINE_COLUMNS})")
        self._run(f"CREATE VIEW quarantine AS {QUARANTINE_VIEW}")
        self._run(f"CREATE VIEW candidates AS {CANDIDATES_VIEW}")
        self._prepared = False

    def close(self) -> None:
        self.con.close()

    def prepare(self, run_id: str) -> None:
        """The verdicts of every line (table `judged`): all but the duplicates."""
        if self._prepared:
            return
        day = self._bronze_fragments()  # one snapshot for the file names and the lines
        self._register_files(day)
        rows = _file_batches(day, BRONZE, self.batch_rows)
        self.con.register("bronze", pa.RecordBatchReader.from_batches(BRONZE, rows))
        self._run(
            f"INSERT INTO judged {self._judged()}", [run_id, dt.datetime.now(dt.UTC), self.day]
        )
        self.con.unregister("bronze")
        self._prepared = True

    def judge(self, run_id: str) -> DayCounts:
        self.prepare(run_id)
        counts = DayCounts()
        self._count(counts)
        self._stage_duplicates(counts)
        self._profile(counts)
        return counts

    def staged(self, name: str) -> pa.RecordBatchReader:
        if name == "quarantine":
            return self._quarantine()
        return self._stream(f"SELECT * FROM {name}", STAGED[name])

    def commit(self, metadata: dict[str, str]) -> None:
        self._run(f"SET memory_limit = '{COMMIT_MEMORY_LIMIT}'")
        replace_day = functools.partial(
            lake.write_arrow, self.settings,
            mode="overwrite", predicate=bronze.day_predicate(self.day), metadata=metadata,
        )  # fmt: skip
        replace_day(tables.QUARANTINE_EVENTS, self._quarantine())
        silver = tables.SILVER_EVENTS.schema
        replace_day(
            tables.SILVER_EVENTS,
            self._stream(
                f"SELECT {', '.join(silver.names)} FROM candidates "
                f"ANTI JOIN duplicates USING ({LINE})",
                silver,
            ),
            schema_mode="merge",  # a silver table from before `experiment`/`arm` gains them
        )

    def _judged(self) -> str:
        """The verdicts of `bronze` with the run's constants (parameters: run id, time, day)."""
        return f"""SELECT *, ?::VARCHAR AS run_id, ?::TIMESTAMPTZ AS judged_at,
            ?::DATE AS landing_date FROM ({self.verdicts})"""

    def _stream(self, query: str, schema: pa.Schema) -> pa.RecordBatchReader:
        """The rows of `query`, batch by batch, typed exactly as `schema`. Read it to the end
        before the next query: DuckDB has one pending result per connection."""
        reader = self.con.sql(query).to_arrow_reader(COMMIT_BATCH)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))

    def _quarantine(self) -> pa.RecordBatchReader:
        """The staged quarantine in landing order, its text decoded as `rules` point 6 says."""
        schema = tables.QUARANTINE_EVENTS.schema
        query = f"SELECT * FROM quarantine ORDER BY {LINE}"
        reader = self.con.sql(query).to_arrow_reader(COMMIT_BATCH)
        return pa.RecordBatchReader.from_batches(schema, (_decoded(b, schema) for b in reader))

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

    def _bronze_fragments(self) -> list[pads.ParquetFileFragment]:
        scan = lake.dataset(self.settings, tables.BRONZE_EVENTS)
        return list(scan.get_fragments(filter=pads.field("landing_date") == self.day))

    def _register_files(self, day: list[pads.ParquetFileFragment]) -> None:
        """Table `day_files`: max_ts of each of the day's source files, its hour's end plus the
        clock skew (the names are one dictionary-encoded column: a cheap read)."""
        skew = dt.timedelta(minutes=self.settings.max_clock_skew_minutes)
        names: set[str] = set()
        for batch in _file_batches(day, SOURCE_FILES, COMMIT_BATCH):
            names.update(pc.unique(batch.column("source_file")).to_pylist())
        files = sorted(names)
        limits = [arrival_hour_end(name, self.day) + skew for name in files]
        self.con.register("day_files", pa.table([files, limits], schema=DAY_FILES))

    def _count(self, counts: DayCounts) -> None:
        """Rows per reason family and JSON objects per unknown field, over the day's verdicts."""
        for family, rows in self.con.execute(
            """SELECT f, count(*) FROM (SELECT unnest(list_distinct(
                    list_transform(reasons, lambda r: split_part(r, ':', 1)))) AS f FROM judged)
                GROUP BY f"""
        ).fetchall():
            counts.reasons[family] += rows
        for name, rows in self.con.execute(
            "SELECT k, count(*) FROM (SELECT unnest(unknown_fields) AS k FROM judged) GROUP BY k"
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
        ((counts.bronze_rows, counts.quarantine_rows),) = self.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE len(reasons) > 0) FROM judged"
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
