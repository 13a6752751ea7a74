"""Connections to the platform's servers from the settings: PostgreSQL through SQLAlchemy (pandas,
dbt-style work) and psycopg (bulk COPY), and Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from audotics.settings import Settings

if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa


def engine(settings: Settings) -> sa.Engine:
    import sqlalchemy as sa  # imported on use: it adds a second to every CLI start

    return sa.create_engine(settings.postgres_url, pool_pre_ping=True)


def libpq_url(settings: Settings) -> str:
    """The URL as libpq (psycopg, psql) spells it, without SQLAlchemy's driver suffix."""
    return settings.postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(libpq_url(settings), autocommit=autocommit)


def redis_client(settings: Settings) -> redis.Redis:
    """The platform's Redis (online features, published recommendations), from the settings."""
    import redis  # imported on use: with its telemetry, 0.1 s of every start that needs none

    return redis.Redis.from_url(settings.redis_dsn, socket_connect_timeout=5, socket_timeout=60)
