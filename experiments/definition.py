"""An experiment as configuration, and its records on the lake (`models/experiments`).

One row per experiment, upserted by id as the model registry's rows are
(spark_jobs/recommender/registry.py): its arms (name, model version, share; the first is the
control), the primary metric, the guardrails, the minimum detectable effect, the planned sample
size, and a status: `running`, then `stopped` or `promoted` (with the winning arm).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.errors import AudoticsError
from audotics.lake.tables import EXPERIMENTS
from audotics.settings import Settings

STATUSES = ("running", "stopped", "promoted")
# The metrics mart_experiment_results computes per exposed user, and which way is better.
METRICS = {
    "recommendation_minutes": "higher",  # minutes listened from the experiment's recommendations
    "listening_minutes": "higher",  # all listening since the experiment began
    "skip_rate": "lower",  # skips among the plays and skips of its recommendations
}
# Ids and arm names reach Redis (serving/keys.py) and the warehouse: a safe alphabet.
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
SHARE_TOLERANCE = 1e-9


class ExperimentError(AudoticsError):
    """An invalid experiment definition, an unknown experiment or a refused status change."""


@dataclass(frozen=True)
class Arm:
    name: str
    model_version: str
    share: float


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    salt: str
    arms: tuple[Arm, ...]
    primary_metric: str
    guardrails: tuple[str, ...]
    mde: float
    sample_size: int
    status: str = "running"
    promoted_arm: str | None = None
    created_at: dt.datetime | None = None
    status_changed_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        _check_name("experiment id", self.experiment_id)
        if not self.salt:
            raise ExperimentError("salt: must not be empty (it decides every user's arm)")
        if len(self.arms) < 2:
            raise ExperimentError(
                f"arms: need a control and at least one other, got {len(self.arms)}"
            )
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ExperimentError(f"arms: names must differ, got {names}")
        for arm in self.arms:
            _check_name("arm name", arm.name)
            if not (math.isfinite(arm.share) and 0 < arm.share < 1):
                raise ExperimentError(
                    f"arm {arm.name}: share must be between 0 and 1, got {arm.share}"
                )
        total = sum(arm.share for arm in self.arms)
        if abs(total - 1) > SHARE_TOLERANCE:
            raise ExperimentError(f"arms: shares must sum to 1, got {total:g}")
        for metric in (self.primary_metric, *self.guardrails):
            if metric not in METRICS:
                raise ExperimentError(f"metric {metric!r}: not one of {sorted(METRICS)}")
        if self.primary_metric in self.guardrails:
            raise ExperimentError(f"guardrails: {self.primary_metric} is the primary metric")
        if not (math.isfinite(self.mde) and self.mde > 0):
            raise ExperimentError(f"mde: must be a positive effect, got {self.mde}")
        if self.sample_size < len(self.arms):
            raise ExperimentError(
                f"sample size: must be at least one user per arm, got {self.sample_size}"
            )
        if self.status not in STATUSES:
            raise ExperimentError(f"status: {self.status!r} not in {STATUSES}")

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ExperimentError(f"experiment {self.experiment_id} has no arm {name!r}")

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "created_at": iso(self.created_at),
            "status_changed_at": iso(self.status_changed_at),
        }


def _check_name(what: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise ExperimentError(f"{what} {value!r}: use 1 to 64 of letters, digits, '.', '_' and '-'")


def iso(moment: dt.date | None) -> str | None:
    """A date or time as ISO 8601 text for JSON, None kept."""
    return None if moment is None else moment.isoformat()


def record(settings: Settings, experiment: Experiment) -> Experiment:
    """Insert the experiment, or replace its row; stamps the times."""
    now = dt.datetime.now(dt.UTC)
    stamped = replace(experiment, created_at=experiment.created_at or now, status_changed_at=now)
    lake.merge_arrow(
        settings, EXPERIMENTS, _to_arrow(stamped), update=True,
        metadata={"writer": "experiments", "experiment_id": stamped.experiment_id},
    )  # fmt: skip
    return stamped


def find_all(settings: Settings) -> list[Experiment]:
    if not lake.exists(settings, EXPERIMENTS):
        return []
    rows = lake.read_arrow(settings, EXPERIMENTS).to_pylist()
    return sorted(map(_from_row, rows), key=lambda e: (e.created_at, e.experiment_id))


def get(settings: Settings, experiment_id: str) -> Experiment:
    if lake.exists(settings, EXPERIMENTS):
        rows = lake.read_arrow(
            settings, EXPERIMENTS, filter=pc.field("experiment_id") == experiment_id
        ).to_pylist()
        if rows:
            return _from_row(rows[0])
    raise ExperimentError(f"no experiment {experiment_id!r} in {EXPERIMENTS}")


def _to_arrow(experiment: Experiment) -> pa.Table:
    row = {
        **asdict(experiment),
        "arms": json.dumps([asdict(arm) for arm in experiment.arms]),
        "guardrails": json.dumps(list(experiment.guardrails)),
    }
    return pa.Table.from_pylist([row], schema=EXPERIMENTS.schema)


def _from_row(row: dict[str, Any]) -> Experiment:
    arms = tuple(Arm(**arm) for arm in json.loads(row["arms"]))
    return Experiment(**{**row, "arms": arms, "guardrails": tuple(json.loads(row["guardrails"]))})
