"""PostgreSQL connections from the settings: SQLAlchemy for pandas and dbt-style work, psycopg
for bulk COPY."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from audotics.settings import Settings


def engine(settings: Settings) -> sa.Engine:
    return sa.create_engine(settings.postgres_url, pool_pre_ping=True)


def libpq_url(settings: Settings) -> str:
    """The URL as libpq (psycopg, psql) spells it, without SQLAlchemy's driver suffix."""
    return settings.postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(libpq_url(settings), autocommit=autocommit)
