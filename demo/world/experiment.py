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
from demo.world.formats import MS_PER_DAY, epoch_ms
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
    """The experiment as the world registers it, with what only the world knows: how many days
    it runs and the challenger's true effect."""

    definition: Experiment  # started (created_at) at midnight UTC of its first day
    days: int
    effect: float

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.definition.created_at.date())

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * MS_PER_DAY

    def arm_of_users(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's arm index, as the read API would assign it."""
        salt, shares = self.definition.salt, [arm.share for arm in self.definition.arms]
        return np.fromiter(
            (assignment.assign(salt, str(user), shares) for user in user_ids),
            dtype=np.int64,
            count=len(user_ids),
        )

    def session_length_factor(self, arm: np.ndarray) -> np.ndarray:
        """How much longer sessions of each arm index (-1: none) run than without the
        experiment: the challenger's true effect."""
        return np.where(arm == 1, 1.0 + self.effect, 1.0)

    def as_dict(self) -> dict[str, Any]:
        """The manifest's record: the definition, and the days and true effect."""
        summary = self.definition.summary()
        return {
            **summary,
            # As the manifest's JSON reads back: lists, not tuples.
            "arms": list(summary["arms"]),
            "guardrails": list(summary["guardrails"]),
            "start_date": self.definition.created_at.date().isoformat(),
            "days": self.days,
            "true_effect": self.effect,
        }


def register(settings: Settings, experiment: WorldExperiment) -> None:
    """Enter the experiment in the lake's register (models/experiments) as started on its first
    day, unless it is there already: a decision taken on it stands when the world is rewritten."""
    try:
        definition.get(settings, experiment.definition.experiment_id)
    except ExperimentError:
        definition.record(settings, experiment.definition)


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
    # Another world (seed, sizes, effect, ...) runs another experiment.
    experiment_id = f"world-{start:%Y%m%d}-{_digest(spec.as_settings())}"
    challenger = _version(spec.seed, start - dt.timedelta(days=1), CHALLENGER)
    arms = (
        Arm(CONTROL, model_versions(spec)[first], SHARES[0]),
        Arm(CHALLENGER, challenger, SHARES[1]),
    )
    planned = max(len(SHARES), round(PLANNED_SHARE_OF_USERS * spec.users))
    started = dt.datetime.combine(start, dt.time(), dt.UTC)
    return WorldExperiment(
        Experiment(
            experiment_id, experiment_id, arms, PRIMARY_METRIC, GUARDRAILS, MDE, planned,
            created_at=started,
        ),
        days=days,
        effect=spec.experiment_effect,
    )  # fmt: skip


def _version(seed: int, trained: dt.date, variant: str = "") -> str:
    return (
        f"als-{trained:%Y%m%d}-{_digest(f'{seed}:{trained}' + (f':{variant}' if variant else ''))}"
    )


def _digest(value: object) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:6]
