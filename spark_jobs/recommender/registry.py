"""The model registry on the lake (`models/registry`, docs/data-contracts.md section 5).

One row per model version: what trained it (engine, params), on which data (as-of date,
interactions table version and content fingerprint), how it scored (metrics beside the
baseline's on the same split), and its status: `candidate` when trained, then `published` or
`rejected` with the reason. The published model is the most recently published one. Rows are
upserted by model_version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.errors import AudoticsError
from audotics.lake import tables
from audotics.settings import Settings

REGISTRY = tables.MODEL_REGISTRY
STATUSES = ("candidate", "published", "rejected")
# Keys of the params JSON that describe the run, not the model: outside its identity.
DATA_SHA256, TUNING = "data_sha256", "tuning"


class RegistryError(AudoticsError):
    """A model version is unknown or a status change is not allowed."""


@dataclass(frozen=True)
class ModelRecord:
    model_version: str
    engine: str
    params: dict[str, Any]
    data_as_of: dt.date
    data_version: int
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    status: str
    reason: str
    created_at: dt.datetime
    status_changed_at: dt.datetime

    @property
    def published(self) -> bool:
        return self.status == "published"


# The engine of the popularity baseline's record: what serves when no model passed the gate yet.
POPULARITY = "popularity"


def model_version(engine: str, params: dict[str, Any], as_of: dt.date, data_sha256: str) -> str:
    """`als-YYYYMMDD-<hash>` (`popularity-...` for the baseline) of the engine, the model's
    params, the as-of date and the content of the training data: the same model trained on the
    same rows gets the same version, so a rerun finds its own row (however long its tuning
    took, whatever the table version)."""
    identity = json.dumps([engine, params, as_of.isoformat(), data_sha256], sort_keys=True)
    kind = POPULARITY if engine == POPULARITY else "als"
    return f"{kind}-{as_of:%Y%m%d}-{hashlib.sha256(identity.encode()).hexdigest()[:6]}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_candidate(
    as_of: dt.date,
    data_version: int,
    data_sha256: str,
    engine: str,
    params: dict[str, Any],
    tuning: dict[str, Any] | None = None,
) -> ModelRecord:
    """A trained model's record; `params` make its identity, the data fingerprint and the
    `tuning` summary are kept beside them in the params JSON."""
    created = now()
    return ModelRecord(
        model_version=model_version(engine, params, as_of, data_sha256),
        engine=engine,
        params={**params, DATA_SHA256: data_sha256, **({TUNING: tuning} if tuning else {})},
        data_as_of=as_of,
        data_version=data_version,
        metrics={},
        baseline_metrics={},
        status="candidate",
        reason="trained, not yet evaluated",
        created_at=created,
        status_changed_at=created,
    )


def popularity_baseline(rejected: ModelRecord, reason: str) -> ModelRecord:
    """A candidate record of the popularity baseline on the data `rejected` was trained on,
    scored by the same evaluation (its metrics are the candidate's baseline metrics)."""
    data_sha256 = rejected.params[DATA_SHA256]
    created = now()
    return ModelRecord(
        model_version=model_version(POPULARITY, {}, rejected.data_as_of, data_sha256),
        engine=POPULARITY,
        params={DATA_SHA256: data_sha256},
        data_as_of=rejected.data_as_of,
        data_version=rejected.data_version,
        metrics=rejected.baseline_metrics,
        baseline_metrics=rejected.baseline_metrics,
        status="candidate",
        reason=reason,
        created_at=created,
        status_changed_at=created,
    )


def register(settings: Settings, record: ModelRecord) -> ModelRecord:
    """Insert the record, or replace the row of the same model_version."""
    if record.status not in STATUSES:
        raise RegistryError(f"{record.model_version}: status {record.status!r} not in {STATUSES}")
    lake.merge_arrow(
        settings,
        REGISTRY,
        _to_arrow([record]),
        update=True,
        metadata={"writer": "recommender.registry", "model_version": record.model_version},
    )
    return record


def find(settings: Settings, version: str) -> ModelRecord | None:
    rows = _read(settings, pc.field("model_version") == version)
    return rows[0] if rows else None


def get(settings: Settings, version: str) -> ModelRecord:
    record = find(settings, version)
    if record is None:
        raise RegistryError(f"model {version} is not in {REGISTRY}")
    return record


def set_status(settings: Settings, version: str, status: str, reason: str) -> ModelRecord:
    return register(
        settings,
        replace(get(settings, version), status=status, reason=reason, status_changed_at=now()),
    )


def record_metrics(
    settings: Settings, version: str, metrics: dict[str, float], baseline: dict[str, float]
) -> ModelRecord:
    return register(
        settings, replace(get(settings, version), metrics=metrics, baseline_metrics=baseline)
    )


def get_published(settings: Settings) -> ModelRecord | None:
    """The model in service: the most recently published one (None before the first)."""
    if not lake.exists(settings, REGISTRY):
        return None
    published = _read(settings, pc.field("status") == "published")
    return max(published, key=lambda r: r.status_changed_at, default=None)


def _read(settings: Settings, condition: pc.Expression) -> list[ModelRecord]:
    if not lake.exists(settings, REGISTRY):
        return []
    return [
        _from_row(row) for row in lake.read_arrow(settings, REGISTRY, filter=condition).to_pylist()
    ]


def _to_arrow(records: list[ModelRecord]) -> pa.Table:
    rows = [
        {
            **asdict(r),
            "params": json.dumps(r.params, sort_keys=True),
            "metrics": json.dumps(r.metrics, sort_keys=True),
            "baseline_metrics": json.dumps(r.baseline_metrics, sort_keys=True),
        }
        for r in records
    ]
    return pa.Table.from_pylist(rows, schema=REGISTRY.schema)


def _from_row(row: dict[str, Any]) -> ModelRecord:
    decoded = {name: json.loads(row[name]) for name in ("params", "metrics", "baseline_metrics")}
    return ModelRecord(**{**row, **decoded})
