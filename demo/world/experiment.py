"""The A/B experiment the world's service ran: ground truth for the warehouse's analysis.

Over the world's last `world_experiment_days` days (after at least one day without, the
pre-period CUPED needs), recommendation traffic is split half and half between the control (the
model served the day the experiment began) and a challenger. Users are assigned exactly as the
read API assigns them (`audotics.assignment`, salt = experiment id), and a challenger's
recommendation sessions run `world_experiment_effect` longer on average: the true relative effect
on recommendation listening, which can be zero (an A/A test) or negative. Nothing else differs,
so skips and the other guardrails have no true effect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from audotics import assignment
from audotics.settings import Settings
from demo.world.formats import MS_PER_DAY
from demo.world.spec import WorldSpec
from experiments import definition
from experiments.definition import Arm, Experiment, ExperimentError

CONTROL, CHALLENGER = "control", "challenger"
SHARES = (0.5, 0.5)
PRIMARY_METRIC = "recommendation_minutes"
GUARDRAILS = ("skip_rate", "listening_minutes")
MDE = 0.10
PLANNED_SHARE_OF_USERS = 0.2  # the plan: exposed users, as a share of the world's users


@dataclass(frozen=True)
class WorldExperiment:
    experiment_id: str
    start_date: dt.date
    days: int
    control_version: str
    challenger_version: str
    effect: float
    sample_size: int

    @property
    def salt(self) -> str:
        return self.experiment_id

    @property
    def start_ms(self) -> int:
        return int(dt.datetime.combine(self.start_date, dt.time(), dt.UTC).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * MS_PER_DAY

    @property
    def arms(self) -> tuple[tuple[str, str, float], ...]:
        """(name, model version, share) of each arm, the control first."""
        return (
            (CONTROL, self.control_version, SHARES[0]),
            (CHALLENGER, self.challenger_version, SHARES[1]),
        )

    def arm_of_users(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's arm index, as the read API would assign it."""
        return np.fromiter(
            (assignment.assign(self.salt, str(user), SHARES) for user in user_ids),
            dtype=np.int64,
            count=len(user_ids),
        )

    def session_length_factor(self, arm: np.ndarray) -> np.ndarray:
        """How much longer sessions of each arm index (-1: none) run than without the
        experiment: the challenger's true effect."""
        return np.where(arm == 1, 1.0 + self.effect, 1.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "salt": self.salt,
            "start_date": self.start_date.isoformat(),
            "days": self.days,
            "arms": [
                {"name": name, "model_version": version, "share": share}
                for name, version, share in self.arms
            ],
            "primary_metric": PRIMARY_METRIC,
            "guardrails": list(GUARDRAILS),
            "mde": MDE,
            "sample_size": self.sample_size,
            "true_effect": self.effect,
        }


def register(settings: Settings, experiment: WorldExperiment) -> None:
    """Enter the experiment in the lake's register (models/experiments) as started on its first
    day, unless it is there already: a decision taken on it stands when the world is rewritten."""
    try:
        definition.get(settings, experiment.experiment_id)
        return
    except ExperimentError:
        pass
    started = dt.datetime.combine(experiment.start_date, dt.time(), dt.UTC)
    definition.record(
        settings,
        Experiment(
            experiment.experiment_id,
            experiment.salt,
            tuple(Arm(*arm) for arm in experiment.arms),
            PRIMARY_METRIC,
            GUARDRAILS,
            MDE,
            experiment.sample_size,
            created_at=started,
        ),
    )


def model_versions(spec: WorldSpec) -> list[str]:
    """Per day of the world, the recommendation model the app served (trained the night
    before): fictional versions in the registry's format, e.g. `als-20261031-1a2b3c`."""
    return [_version(spec.seed, day - dt.timedelta(days=1)) for day in spec.dates()]


def plan_experiment(spec: WorldSpec) -> WorldExperiment | None:
    """The world's experiment over its last days, or None (no experiment days, or a world of
    one day: no pre-period)."""
    dates = spec.dates()
    days = min(spec.experiment_days, len(dates) - 1)
    if days < 1:
        return None
    first = len(dates) - days
    start = dates[first]
    return WorldExperiment(
        # Another world (seed, sizes, effect, ...) runs another experiment.
        experiment_id=f"world-{start:%Y%m%d}-{_digest(spec.as_settings())}",
        start_date=start,
        days=days,
        control_version=model_versions(spec)[first],
        challenger_version=_version(spec.seed, start - dt.timedelta(days=1), CHALLENGER),
        effect=spec.experiment_effect,
        sample_size=max(len(SHARES), round(PLANNED_SHARE_OF_USERS * spec.users)),
    )


def _version(seed: int, trained: dt.date, variant: str = "") -> str:
    return (
        f"als-{trained:%Y%m%d}-{_digest(f'{seed}:{trained}' + (f':{variant}' if variant else ''))}"
    )


def _digest(value: object) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:6]
