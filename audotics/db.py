"""PostgreSQL connections from the settings: SQLAlchemy for pandas and dbt-style work, psycopg
for bulk COPY."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from audotics.settings import Settings

if TYPE_CHECKING:
    import sqlalchemy as sa


def engine(settings: Settings) -> sa.Engine:
    import sqlalchemy as sa  # imported on use: it adds a second to every CLI start

    return sa.create_engine(settings.postgres_url, pool_pre_ping=True)


def libpq_url(settings: Settings) -> str:
    """The URL as libpq (psycopg, psql) spells it, without SQLAlchemy's driver suffix."""
    return settings.postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(libpq_url(settings), autocommit=autocommit)
