"""GDPR erasure in the warehouse: delete a user's rows from every base table that holds a user
column, in `raw` and in the schemas dbt builds (the operational `app` schema is the app's), and
the raw copies of landing lines (quarantine) that mention the user, as the lake erasure does."""

from __future__ import annotations

import psycopg
from psycopg import sql

from audotics import db
from audotics.lake import tables
from audotics.settings import Settings
from warehouse.load import RAW_SCHEMA, SOURCES

# The lake's user columns: `raw` copies them as they are, and the dbt models keep their names.
USER_COLUMNS = sorted({column for table in tables.TABLES for column in table.user_columns})
RAW_LINE_COLUMN = "raw"  # the landing line, in the lake tables that keep raw lines
RAW_LINE_TABLES = sorted(source.raw_table for source in SOURCES if source.table.raw_lines)


def erase_user(settings: Settings, user_id: str) -> int:
    """Delete the user's rows (in one transaction); returns how many were deleted."""
    with db.connect(settings) as conn:
        removed = _erase_keyed(conn, user_id) + _erase_raw_lines(conn, user_id)
        conn.commit()
    return removed


def _erase_keyed(conn: psycopg.Connection, user_id: str) -> int:
    holders = conn.execute(
        "select c.table_schema, c.table_name, c.column_name "
        "from information_schema.columns c join information_schema.tables t "
        "using (table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.column_name = any(%s) "
        "and c.table_schema not in ('pg_catalog', 'information_schema', 'app')",
        (USER_COLUMNS,),
    ).fetchall()
    return sum(
        _delete(conn, schema, table, "{}::text = %s", column, user_id)
        for schema, table, column in holders
    )


def _erase_raw_lines(conn: psycopg.Connection, user_id: str) -> int:
    loaded = conn.execute(
        "select table_name from information_schema.columns "
        "where table_schema = %s and table_name = any(%s) and column_name = %s",
        (RAW_SCHEMA, RAW_LINE_TABLES, RAW_LINE_COLUMN),
    ).fetchall()
    return sum(
        _delete(conn, RAW_SCHEMA, table, "strpos({}, %s) > 0", RAW_LINE_COLUMN, user_id)
        for (table,) in loaded
    )


def _delete(
    conn: psycopg.Connection, schema: str, table: str, condition: str, column: str, user_id: str
) -> int:
    """Delete the rows of schema.table where `condition` (`{}` = the column) holds for the id."""
    statement = sql.SQL("delete from {} where " + condition).format(
        sql.Identifier(schema, table), sql.Identifier(column)
    )
    return conn.execute(statement, (user_id,)).rowcount
