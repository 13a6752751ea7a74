"""GDPR erasure in the warehouse: delete a user's rows from every base table that holds a user
column or a raw landing line, in `raw` and in the schemas dbt builds (the operational `app`
schema is the app's), then `VACUUM (ANALYZE)` those tables and `CHECKPOINT`.

A DELETE only marks rows dead: the tuples stay in the table's pages, and ANALYZE's statistics
(`pg_statistic`, the most-common-values and histograms `pg_stats` shows) keep the old values
until the table is analyzed again. VACUUM removes the dead tuples and ANALYZE recomputes the
statistics from the live rows. WAL written before the erasure still holds the rows until a
checkpoint lets PostgreSQL remove or recycle those segments (README, GDPR erasure).

Raw lines are matched with `ingestion.erasure.user_pattern`, as in the lake, so the warehouse
loses exactly the lines the lake does.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import errors, sql

from audotics import db
from audotics.lake import tables
from audotics.settings import Settings
from ingestion.erasure import user_pattern
from warehouse.errors import WarehouseError
from warehouse.load import LOAD_LOCK_KEY

log = logging.getLogger(__name__)

# The lake's user columns: `raw` copies them as they are, and the dbt models keep their names.
USER_COLUMNS = sorted({column for table in tables.TABLES for column in table.user_columns})
# A landing line: `raw` in the lake's raw-line tables, renamed `raw_line` by staging.
RAW_LINE_COLUMNS = ["raw", "raw_line"]
NOT_WAREHOUSE = ["pg_catalog", "information_schema", "pg_toast", "app"]

Holder = tuple[str, str, str]  # schema, table, column


def erase_user(settings: Settings, user_id: str) -> int:
    """Delete the user's rows (in one transaction, never interleaved with a load), then vacuum
    and analyze every table that could hold them; returns how many rows were deleted.

    Idempotent: a rerun after a crash deletes nothing more, and still vacuums and analyzes.
    """
    with db.connect(settings) as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))
        keyed, lines = _holders(conn, USER_COLUMNS), _holders(conn, RAW_LINE_COLUMNS)
        _require_maintain(conn, keyed + lines)
        removed = sum(_delete(conn, holder, "{}::text = %s", user_id) for holder in keyed)
        pattern = user_pattern(user_id)
        removed += sum(_delete(conn, holder, "{} ~ %s", pattern) for holder in lines)
        conn.commit()
    vacuum_analyze(settings, sorted({(schema, table) for schema, table, _ in keyed + lines}))
    return removed


def _holders(conn: psycopg.Connection, columns: list[str]) -> list[Holder]:
    """The base tables of the warehouse schemas with one of `columns` (text-like)."""
    return conn.execute(
        "select c.table_schema, c.table_name, c.column_name "
        "from information_schema.columns c join information_schema.tables t "
        "using (table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.column_name = any(%s) "
        "and c.table_schema <> all(%s) order by 1, 2, 3",
        (columns, NOT_WAREHOUSE),
    ).fetchall()


def _require_maintain(conn: psycopg.Connection, holders: list[Holder]) -> None:
    """VACUUM without the MAINTAIN privilege only warns and skips the table: refuse first.
    (Before PostgreSQL 17, which has no MAINTAIN, the table's owner may vacuum it.)"""
    check = (
        "select has_table_privilege(%s::regclass, 'MAINTAIN')"
        if conn.info.server_version >= 170000
        else "select pg_has_role(relowner, 'USAGE') from pg_class where oid = %s::regclass"
    )
    denied = [
        f"{schema}.{table}"
        for schema, table in sorted({(s, t) for s, t, _ in holders})
        if not conn.execute(check, (f'"{schema}"."{table}"',)).fetchone()[0]
    ]
    if denied:
        raise WarehouseError(
            f"the warehouse role cannot VACUUM {denied} (needs ownership, MAINTAIN or "
            "pg_maintain): their dead tuples and statistics would keep the erased user; "
            "nothing was deleted"
        )


def _delete(conn: psycopg.Connection, holder: Holder, condition: str, value: str) -> int:
    """Delete the rows of the holder's table where `condition` (`{}` = its column) holds."""
    schema, table, column = holder
    statement = sql.SQL("delete from {} where " + condition).format(
        sql.Identifier(schema, table), sql.Identifier(column)
    )
    return conn.execute(statement, (value,)).rowcount


def vacuum_analyze(settings: Settings, relations: list[tuple[str, str]]) -> None:
    """`VACUUM (ANALYZE)` each (schema, table), then `CHECKPOINT` if the role may (superuser or
    pg_checkpoint): VACUUM cannot run in a transaction, so this commits as it goes."""
    with db.connect(settings, autocommit=True) as conn:
        for schema, table in relations:
            conn.execute(sql.SQL("vacuum (analyze) {}").format(sql.Identifier(schema, table)))
        try:
            conn.execute("checkpoint")
        except errors.InsufficientPrivilege:
            log.warning(
                "CHECKPOINT not allowed for this role (needs pg_checkpoint): WAL written before "
                "the erasure stays until the server's next checkpoint (checkpoint_timeout)"
            )
