"""Arrow to PostgreSQL: the column type each Arrow type is copied to, and bulk COPY of Arrow
batches (written as CSV by Arrow's C++ writer, lists as PostgreSQL array literals).

Any text a lake file holds is copied: PostgreSQL text cannot hold NUL and must be valid UTF-8,
while a Parquet string may hold either (a lake row written by any tool). Such a value is copied
as its UTF-8 rendering with each NUL and each invalid sequence as U+FFFD, as ingestion renders
quarantine text (`ingestion.rules`, point 6); the exact bytes stay in the lake."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import sql

from warehouse.errors import WarehouseError

_SIMPLE_TYPES = {
    pa.string(): "text",
    pa.large_string(): "text",
    pa.string_view(): "text",
    pa.bool_(): "boolean",
    pa.int8(): "smallint",
    pa.int16(): "smallint",
    pa.uint8(): "smallint",
    pa.int32(): "integer",
    pa.uint16(): "integer",
    pa.int64(): "bigint",
    pa.uint32(): "bigint",
    pa.float16(): "real",
    pa.float32(): "real",
    pa.float64(): "double precision",
    pa.date32(): "date",
    pa.date64(): "date",
}


def postgres_type(arrow_type: pa.DataType, column: str) -> str:
    """The PostgreSQL type (as `format_type` spells it) a lake column is copied to; `column`
    names the column in the error for a type without one."""
    if pa.types.is_dictionary(arrow_type):
        return postgres_type(arrow_type.value_type, column)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        element = postgres_type(arrow_type.value_type, column)
        if element.endswith("[]"):
            raise WarehouseError(f"column {column}: nested lists ({arrow_type}) are not supported")
        return f"{element}[]"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp without time zone"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if arrow_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[arrow_type]
    raise WarehouseError(f"column {column}: Arrow type {arrow_type} has no warehouse mapping")


REPLACEMENT = "\ufffd"


def _is_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _valid_text(column: pa.Array) -> pa.Array:
    """The text column as PostgreSQL can hold it: NUL and invalid UTF-8 as U+FFFD. The scan of
    the bytes is vectorized; only a batch that holds invalid UTF-8 is decoded value by value."""
    column = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
    try:
        column.validate(full=True)  # raises on invalid UTF-8
    except pa.ArrowInvalid:
        values = column.view(pa.binary()).to_pylist()
        column = pa.array(
            [None if v is None else v.decode("utf-8", "replace") for v in values], pa.string()
        )
    if pc.any(pc.match_substring(column, "\x00")).as_py():
        column = pc.replace_substring(column, "\x00", REPLACEMENT)
    return column


def _array_literals(column: pa.Array) -> pa.Array:
    """A list column as PostgreSQL array literals ('{"a","b"}'), which COPY's CSV parser reads."""
    elements = _valid_text(pc.cast(column.values, pa.string()))
    escaped = pc.replace_substring(pc.replace_substring(elements, "\\", "\\\\"), '"', '\\"')
    quoted = pc.if_else(
        pc.is_null(elements), "NULL", pc.binary_join_element_wise('"', escaped, '"', "")
    )
    lists = type(column).from_arrays(column.offsets, quoted, mask=column.is_null())
    return pc.binary_join_element_wise("{", pc.binary_join(lists, ","), "}", "")


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Turn the columns Arrow's CSV writer cannot write (lists, dictionaries) into text, and
    text into text PostgreSQL accepts."""
    columns = []
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = _array_literals(column)
        elif _is_text(column.type):
            column = _valid_text(column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def copy_batches(
    conn: psycopg.Connection,
    table: sql.Identifier,
    columns: Sequence[str],
    batches: Iterable[pa.RecordBatch],
) -> int:
    """Bulk COPY Arrow batches into `table` (schema-qualified); returns the rows copied."""
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    options = pa_csv.WriteOptions(include_header=False)
    rows = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(_csv_ready(batch), sink, write_options=options)
            copy.write(memoryview(sink.getvalue()))
            rows += batch.num_rows
    return rows
