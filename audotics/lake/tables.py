"""The table catalog: every lake table declared once, as code.

A `Table` says where a table lives (`<layer>/<name>`), its schema, how it is partitioned, what
identifies a row, and which columns hold a person's id. Writers take their schema from here,
readers and the DAGs' Assets name tables through it, GDPR erasure finds personal data with it,
the warehouse copies the tables it lists, and `docs/data-contracts.md` renders it.

The user and track feature tables are the one exception to "schema here": their columns are
declared, with a description each, by the feature views in `feature_store.definitions`
(`schema=None` below). The interactions view reads its table, whose schema is declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _schema(*fields: tuple[str, pa.DataType] | tuple[str, pa.DataType, bool]) -> pa.Schema:
    """`(name, type)` is nullable; `(name, type, False)` is not."""
    return pa.schema(pa.field(name, kind, *nullable) for name, kind, *nullable in fields)


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    description: str
    schema: pa.Schema | None  # None: the feature view of the same name declares the columns
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # what identifies a row
    user_columns: tuple[str, ...] = ()  # columns holding a user id (personal data)
    raw_lines: bool = False  # holds raw landing lines, in which any user id may appear
    scd2: bool = False  # SCD2 history of an app.* table (valid_from, valid_to, is_current)
    # What a column means beyond its name and type, for the data contracts page.
    notes: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def path(self) -> str:
        """`<layer>/<name>`: the table's folder under the lake root and its name in messages."""
        return f"{self.layer}/{self.name}"

    @property
    def personal(self) -> bool:
        return bool(self.user_columns) or self.raw_lines

    def __str__(self) -> str:
        return self.path


# --- landing to silver (ingestion) ---------------------------------------------------------------

BRONZE_EVENTS = Table(
    "bronze", "events",
    "Every landed line exactly as received, with where it came from.",
    _schema(
        ("source_file", pa.string(), False),
        ("line_number", pa.int64(), False),
        ("raw", pa.binary(), False),
        ("run_id", pa.string(), False),
        ("ingested_at", UTC_TIMESTAMP, False),
        ("landing_date", pa.date32(), False),
        ("raw_bytes", pa.int64()),
        ("raw_sha256", pa.string()),
    ),
    partition_by=("landing_date",), keys=("source_file", "line_number"), raw_lines=True,
    notes={
        "raw": "the line's bytes as received, nothing re-encoded; only its first "
        "`AUDOTICS_INGEST_MAX_LINE_BYTES` bytes when it is longer",
        "raw_bytes": "the full line's length in bytes: more than `raw`'s when the line was cut "
        "(it is then quarantined as `line_too_long`); null on rows landed before it was kept",
        "raw_sha256": "SHA-256 (hex) of the full line when `raw` holds only its start; null when "
        "`raw` is the whole line",
        "landing_date": "the arrival day (the landing `date=` folder): the only date every "
        "record has, malformed ones included",
    },
)  # fmt: skip
QUARANTINE_EVENTS = Table(
    "quarantine", "events",
    "Lines that failed parsing or a conformance expectation, with all their reasons.",
    _schema(
        ("source_file", pa.string(), False),
        ("line_number", pa.int64(), False),
        ("raw", pa.string(), False),
        ("reasons", pa.list_(pa.string()), False),
        ("run_id", pa.string(), False),
        ("quarantined_at", UTC_TIMESTAMP, False),
        ("landing_date", pa.date32(), False),
    ),
    partition_by=("landing_date",), keys=("source_file", "line_number"), raw_lines=True,
    notes={
        "raw": "the line as received, as text",
        "reasons": "every check the line failed: `malformed_json`, `missing_field:ts`, "
        "`unknown_user_id`, `ts_in_future`, `ms_played_exceeds_track_duration`, ...",
    },
)  # fmt: skip
SILVER_EVENTS = Table(
    "silver", "events",
    "Typed, conformed listening events (UTC, known vocabularies), unique on `event_id` across "
    "runs. An event arriving late, within `AUDOTICS_LATENESS_DAYS`, lands in its own date's "
    "partition.",
    _schema(
        ("event_id", pa.string(), False),
        ("event_type", pa.string(), False),
        ("user_id", pa.string(), False),
        ("track_id", pa.string(), False),
        ("ts", UTC_TIMESTAMP, False),
        ("ms_played", pa.int64(), False),
        ("context", pa.string()),
        ("playlist_id", pa.string()),
        ("model_version", pa.string()),
        ("experiment", pa.string()),
        ("arm", pa.string()),
        ("device", pa.string()),
        ("country", pa.string()),
        ("ingested_at", UTC_TIMESTAMP, False),
        ("run_id", pa.string(), False),
        ("landing_date", pa.date32(), False),
        ("event_date", pa.date32(), False),
    ),
    partition_by=("event_date",), keys=("event_id",), user_columns=("user_id",),
    notes={
        "event_type": "`play`, `skip`, `like`, `playlist_add`",
        "ms_played": "`play`/`skip`: ms listened; `like`/`playlist_add`: 0",
        "playlist_id": "set when `context` is `playlist`, and for `playlist_add` (the target)",
        "model_version": "set when `context` is `recommendation`: the model that recommended it",
        "experiment": "the A/B experiment whose arm served the recommendation, else null",
        "arm": "that experiment's arm (its model version is `model_version`); set with "
        "`experiment`",
        "run_id": "Airflow run id or CLI run id",
        "landing_date": "the landing day (ingestion interval) the event arrived in; a rerun of "
        "that day replaces exactly its rows",
        "event_date": "the UTC date of `ts`",
    },
)  # fmt: skip

_HISTORY = (("valid_from", UTC_TIMESTAMP), ("valid_to", UTC_TIMESTAMP), ("is_current", pa.bool_()))
_HISTORY_NOTES = {
    "valid_from": "the source `updated_at` of this version",
    "valid_to": "when the next version replaced it; null while current",
    "is_current": "true on the current version of each row",
}
SILVER_USERS = Table(
    "silver", "users",
    "`app.users` with SCD2 history.",
    _schema(
        ("user_id", pa.string()), ("username", pa.string()), ("email", pa.string()),
        ("country", pa.string()), ("birth_year", pa.int64()), ("subscription", pa.string()),
        ("created_at", UTC_TIMESTAMP), ("updated_at", UTC_TIMESTAMP), *_HISTORY,
    ),
    keys=("user_id",), user_columns=("user_id",), scd2=True, notes=_HISTORY_NOTES,
)  # fmt: skip
SILVER_ARTISTS = Table(
    "silver", "artists",
    "`app.artists` with SCD2 history.",
    _schema(
        ("artist_id", pa.string()), ("name", pa.string()), ("country", pa.string()),
        ("genre", pa.string()), ("created_at", UTC_TIMESTAMP), ("updated_at", UTC_TIMESTAMP),
        *_HISTORY,
    ),
    keys=("artist_id",), scd2=True, notes=_HISTORY_NOTES,
)  # fmt: skip
SILVER_TRACKS = Table(
    "silver", "tracks",
    "`app.tracks` (with audio features) with SCD2 history.",
    _schema(
        ("track_id", pa.string()), ("title", pa.string()), ("artist_id", pa.string()),
        ("album", pa.string()), ("genre", pa.string()), ("duration_ms", pa.int64()),
        ("release_date", pa.date32()), ("danceability", pa.float64()),
        ("energy", pa.float64()), ("valence", pa.float64()), ("tempo", pa.float64()),
        ("acousticness", pa.float64()), ("instrumentalness", pa.float64()),
        ("loudness", pa.float64()), ("created_at", UTC_TIMESTAMP),
        ("updated_at", UTC_TIMESTAMP), *_HISTORY,
    ),
    keys=("track_id",), scd2=True, notes=_HISTORY_NOTES,
)  # fmt: skip
SILVER_PLAYLISTS = Table(
    "silver", "playlists",
    "`app.playlists` with SCD2 history.",
    _schema(
        ("playlist_id", pa.string()), ("owner_user_id", pa.string()), ("name", pa.string()),
        ("is_public", pa.bool_()), ("created_at", UTC_TIMESTAMP),
        ("updated_at", UTC_TIMESTAMP), *_HISTORY,
    ),
    keys=("playlist_id",), user_columns=("owner_user_id",), scd2=True, notes=_HISTORY_NOTES,
)  # fmt: skip
SILVER_PLAYLIST_TRACKS = Table(
    "silver", "playlist_tracks",
    "`app.playlist_tracks` with SCD2 history.",
    _schema(
        ("playlist_id", pa.string()), ("track_id", pa.string()), ("position", pa.int64()),
        ("added_at", UTC_TIMESTAMP), ("updated_at", UTC_TIMESTAMP), *_HISTORY,
    ),
    keys=("playlist_id", "track_id"), scd2=True, notes=_HISTORY_NOTES,
)  # fmt: skip
INGEST_RUNS = Table(
    "ops",
    "ingest_runs",
    "One row per ingestion run and interval, written when the run starts and updated after each "
    "step, with the reconciliation counts: the run fails unless input_records = bronze_rows = "
    "silver_rows + quarantine_rows + duplicate_rows, and the volume gate flags a day with no "
    "files or too few records.",
    _schema(
        ("run_id", pa.string()),
        ("interval_start", UTC_TIMESTAMP),
        ("interval_end", UTC_TIMESTAMP),
        ("input_records", pa.int64()),
        ("bronze_rows", pa.int64()),
        ("silver_rows", pa.int64()),
        ("quarantine_rows", pa.int64()),
        ("duplicate_rows", pa.int64()),
        ("unknown_fields", pa.string()),
        ("started_at", UTC_TIMESTAMP),
        ("finished_at", UTC_TIMESTAMP),
        ("status", pa.string()),
        ("landing_files", pa.int64()),
        ("steps_done", pa.list_(pa.string())),
        ("status_reason", pa.string()),
    ),
    keys=("run_id", "interval_start"),
    notes={
        "input_records": "counted from the landing files' bytes as bronze streams them, "
        "independently of the line splitting (NULL until the bronze step is done)",
        "unknown_fields": "the schema-drift report: JSON {field: records}; the fields stay in "
        "bronze",
        "status": "`running` until the run ends, then `success`, `warning` (flagged by the volume "
        "gate, `AUDOTICS_INGEST_VOLUME_GATE=warn`) or `failed`",
        "steps_done": "the steps committed so far, in order (`bronze`, `refine`): a row left "
        "`running` says which step did not finish; the next run of the day redoes it",
        "status_reason": "why the status is not `success`: the volume gate's finding, the failed "
        "gate, a refused landing file, or the interruption",
    },
)

# --- features (the offline feature store) --------------------------------------------------------

USER_FEATURES = Table(
    "features", "user_features",
    "Listening behaviour per user as of a snapshot date.",
    None, partition_by=("as_of_date",), keys=("user_id", "as_of_date"), user_columns=("user_id",),
)  # fmt: skip
TRACK_FEATURES = Table(
    "features", "track_features",
    "Popularity, engagement and audio features per track as of a snapshot date.",
    None, partition_by=("as_of_date",), keys=("track_id", "as_of_date"),
)  # fmt: skip
INTERACTIONS = Table(
    "features", "interactions",
    "Implicit-feedback confidence per user and track as of a snapshot date: the ALS training "
    "input.",
    _schema(
        ("user_id", pa.string()),
        ("track_id", pa.string()),
        ("as_of_date", pa.date32()),
        ("confidence", pa.float64()),
        ("plays", pa.int64()),
        ("skips", pa.int64()),
        ("likes", pa.int64()),
        ("playlist_adds", pa.int64()),
        ("last_ts", UTC_TIMESTAMP),
    ),
    partition_by=("as_of_date",), keys=("user_id", "track_id", "as_of_date"),
    user_columns=("user_id",),
    notes={
        "confidence": "> 0: from plays, completion, likes and playlist adds, minus skips "
        "(the weights are settings)",
    },
)  # fmt: skip

# --- models and gold (training) ------------------------------------------------------------------

MODEL_REGISTRY = Table(
    "models",
    "registry",
    "One row per model version: engine, params, data, metrics beside the baseline, status.",
    _schema(
        ("model_version", pa.string()),
        ("engine", pa.string()),
        ("params", pa.string()),
        ("data_as_of", pa.date32()),
        ("data_version", pa.int64()),
        ("metrics", pa.string()),
        ("baseline_metrics", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("created_at", UTC_TIMESTAMP),
        ("status_changed_at", UTC_TIMESTAMP),
    ),
    keys=("model_version",),
    notes={
        "model_version": "e.g. `als-20261103-1a2b3c`",
        "engine": "`implicit` or `spark`",
        "params": "JSON: the ALS params, `data_sha256` (the input's fingerprint), `tuning`",
        "data_version": "the version of features/interactions it was trained on",
        "metrics": "JSON, keys like `ndcg@10`",
        "baseline_metrics": "JSON: the popularity baseline's metrics on the same hold-out",
        "status": "`candidate`, `published` or `rejected`",
    },
)
EXPERIMENTS = Table(
    "models",
    "experiments",
    "One row per A/B experiment between model versions: arms, metrics, plan, status.",
    _schema(
        ("experiment_id", pa.string(), False),
        ("salt", pa.string()),
        ("arms", pa.string()),
        ("primary_metric", pa.string()),
        ("guardrails", pa.string()),
        ("mde", pa.float64()),
        ("sample_size", pa.int64()),
        ("status", pa.string()),
        ("promoted_arm", pa.string()),
        ("created_at", UTC_TIMESTAMP),
        ("status_changed_at", UTC_TIMESTAMP),
    ),
    keys=("experiment_id",),
    notes={
        "salt": "hashed with each user id to assign arms (`audotics.assignment`)",
        "arms": "JSON list of {name, model_version, share}; the first is the control",
        "guardrails": "JSON list of metric names",
        "mde": "minimum detectable effect, relative (0.1 = 10%)",
        "sample_size": "planned exposed users, all arms together",
        "status": "`running`, then `stopped` or `promoted`",
        "created_at": "when the experiment started: its pre-period ends here",
    },
)
EXPERIMENT_DECISIONS = Table(
    "models",
    "experiment_decisions",
    "Every decision taken on a running experiment from its results in the warehouse: "
    "continue, promote or stop, and why.",
    _schema(
        ("experiment_id", pa.string(), False),
        ("decided_at", UTC_TIMESTAMP, False),
        ("results_as_of", pa.date32()),
        ("decision", pa.string(), False),
        ("arm", pa.string()),
        ("reason", pa.string()),
        ("exposed_users", pa.int64()),
        ("primary_lift", pa.float64()),
        ("primary_lift_ci_low", pa.float64()),
        ("primary_lift_ci_high", pa.float64()),
        ("srm_p_value", pa.float64()),
    ),
    keys=("experiment_id", "decided_at"),
    notes={
        "decision": "`continue`, `promote` (the challenger `arm`) or `stop` (control stays)",
        "primary_lift": "CUPED-adjusted relative difference of the primary metric from control",
    },
)
USER_FACTORS = Table(
    "models", "user_factors",
    "ALS user factors of each model version.",
    _schema(("model_version", pa.string()), ("user_id", pa.string()),
            ("factors", pa.list_(pa.float32()))),
    partition_by=("model_version",), keys=("model_version", "user_id"),
    user_columns=("user_id",),
)  # fmt: skip
ITEM_FACTORS = Table(
    "models", "item_factors",
    "ALS item factors of each model version.",
    _schema(("model_version", pa.string()), ("track_id", pa.string()),
            ("factors", pa.list_(pa.float32()))),
    partition_by=("model_version",), keys=("model_version", "track_id"),
)  # fmt: skip
RECOMMENDATIONS = Table(
    "gold", "recommendations",
    "Top-N tracks per user of each model version (source: model or fallback).",
    _schema(
        ("model_version", pa.string()),
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("track_id", pa.string()),
        ("score", pa.float64()),
        ("source", pa.string()),
    ),
    partition_by=("model_version",), keys=("model_version", "user_id", "rank"),
    user_columns=("user_id",), notes={"rank": "1-based", "source": "`model` or `fallback`"},
)  # fmt: skip
SIMILAR_TRACKS = Table(
    "gold", "similar_tracks",
    "The most similar tracks of each track, by the model's item factors.",
    _schema(
        ("model_version", pa.string()),
        ("track_id", pa.string()),
        ("rank", pa.int32()),
        ("similar_track_id", pa.string()),
        ("score", pa.float64()),
    ),
    partition_by=("model_version",), keys=("model_version", "track_id", "rank"),
    notes={"rank": "1-based"},
)  # fmt: skip

# --- operations ----------------------------------------------------------------------------------

GDPR_REQUESTS = Table(
    "ops",
    "gdpr_requests",
    "The audit of erasure requests, under a SHA-256 of the user id (never the id): written "
    "`pending` before anything is erased, updated as each store's step is done.",
    _schema(
        ("request_id", pa.string()),
        ("subject_sha256", pa.string()),
        ("requested_at", UTC_TIMESTAMP),
        ("completed_at", UTC_TIMESTAMP),
        ("removed", pa.string()),
        ("vacuum_retention_hours", pa.int64()),
        ("vacuumed_files", pa.int64()),
        ("status", pa.string()),
        ("steps_done", pa.list_(pa.string())),
        ("quarantine_lines", pa.string()),
        ("quarantine_erased_at", UTC_TIMESTAMP),
    ),
    keys=("request_id",),
    notes={
        "completed_at": "null while the request is `pending`",
        "removed": "JSON {store: rows, lines or keys removed}, so far",
        "status": "`pending` until every step is done, then `done`; a rerun of "
        "`audotics gdpr-delete` or the `gdpr_erasure` DAG completes a pending request",
        "steps_done": "the erasure steps done so far, in order (`serving`, `online features`, "
        "`landing`, `lake tables`, `raw lines`, `vacuum`, `warehouse`, `redis persistence`)",
        "quarantine_lines": "JSON {landing_date: lines}: the quarantine/events lines erased, so "
        "the warehouse reconciles quarantine with ingest runs that counted them",
        "quarantine_erased_at": "when those lines were erased: runs that finished before "
        "counted them",
    },
)

TABLES: tuple[Table, ...] = (
    BRONZE_EVENTS, QUARANTINE_EVENTS, SILVER_EVENTS,
    SILVER_USERS, SILVER_ARTISTS, SILVER_TRACKS, SILVER_PLAYLISTS, SILVER_PLAYLIST_TRACKS,
    INGEST_RUNS, USER_FEATURES, TRACK_FEATURES, INTERACTIONS,
    MODEL_REGISTRY, EXPERIMENTS, EXPERIMENT_DECISIONS, USER_FACTORS, ITEM_FACTORS,
    RECOMMENDATIONS, SIMILAR_TRACKS, GDPR_REQUESTS,
)  # fmt: skip
SCD2_TABLES: tuple[Table, ...] = tuple(t for t in TABLES if t.scd2)


def by_path(path: str) -> Table:
    """The table at `<layer>/<name>`; an unknown path names the known ones."""
    for table in TABLES:
        if table.path == path:
            return table
    raise KeyError(f"no lake table {path!r}; known: {[t.path for t in TABLES]}")
