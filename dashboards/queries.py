"""The dashboards' queries: each chart's SQL is a .sql file beside the page that draws it, run by
`query()` against the dbt marts (schema `marts`) of the warehouse PostgreSQL in the settings.

Rows are cached for `dashboards_cache_seconds`. A warehouse that cannot answer yet (server down,
marts not built, marts older than the dashboards) becomes a `WarehouseNotReady` whose message
says what to run; the app shows it instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa
import streamlit as st

from audotics.db import engine
from audotics.errors import AudoticsError
from audotics.settings import Settings, get_settings


class WarehouseNotReady(AudoticsError):
    """The warehouse cannot answer a dashboard yet; the message says what to run."""


@st.cache_resource
def settings() -> Settings:
    return get_settings()


@st.cache_resource
def _engine() -> sa.Engine:
    return engine(settings())


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _read(sql: str, params: dict[str, Any]) -> pd.DataFrame:
    try:
        with _engine().connect() as connection:
            return pd.read_sql_query(sa.text(sql), connection, params=params)
    except sa.exc.OperationalError as exc:
        url = sa.make_url(settings().postgres_url).render_as_string(hide_password=True)
        raise WarehouseNotReady(
            f"PostgreSQL at {url} does not answer ({_first_line(exc.orig)}). Start it with "
            "`make services-up`, or point AUDOTICS_DATABASE_URL at the warehouse."
        ) from exc
    except sa.exc.ProgrammingError as exc:
        missing = (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName)
        if isinstance(exc.orig, missing):
            raise WarehouseNotReady(
                f"The warehouse has no marts yet ({_first_line(exc.orig)}). Run `make run` "
                "first: the nightly pipeline loads the warehouse and builds the dbt marts."
            ) from exc
        if isinstance(exc.orig, psycopg.errors.UndefinedColumn):
            raise WarehouseNotReady(
                f"The marts are older than the dashboards ({_first_line(exc.orig)}). "
                "Rebuild them with `make run`."
            ) from exc
        raise


# Exceptions are not cached: once the marts exist, the next page view finds them.
_cache_seconds = settings().dashboards_cache_seconds
_read_rows = (
    st.cache_data(ttl=_cache_seconds, show_spinner=False)(_read) if _cache_seconds else _read
)


def query(sql_file: Path, **params: Any) -> pd.DataFrame:
    """The rows of a chart's SQL file; bind parameters are written `:name` in the SQL."""
    return _read_rows(sql_file.read_text(), params)


def require_rows(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows, or `WarehouseNotReady` when a page's main mart is empty (built from no events)."""
    if rows.empty:
        raise WarehouseNotReady(
            f"{source} has no rows yet: the warehouse holds no events. Run `make run` first."
        )
    return rows
