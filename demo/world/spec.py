"""What world to generate: the `world_*` settings (and the few others the world depends on),
checked once, with the command line's overrides applied."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from audotics.settings import Settings
from demo.world.errors import WorldError
from demo.world.formats import MS_PER_DAY, epoch_ms

# Command-line option name -> the setting it overrides.
OVERRIDABLE = {
    "seed": "world_seed",
    "start_date": "world_start_date",
    "days": "world_days",
    "users": "world_users",
    "artists": "world_artists",
    "tracks": "world_tracks",
    "events_per_day": "world_events_per_day",
    "bad_rate": "world_bad_record_rate",
    "experiment_days": "world_experiment_days",
    "experiment_effect": "world_experiment_effect",
}
# WorldSpec field -> the setting it comes from: the world's options and what else shapes it.
SETTING_OF = {
    **OVERRIDABLE,
    "launch_date": "service_launch_date",
    "lateness_days": "lateness_days",
}


@dataclass(frozen=True)
class WorldSpec:
    seed: int
    start_date: dt.date
    days: int
    users: int
    artists: int
    tracks: int
    events_per_day: int
    bad_rate: float
    experiment_days: int
    experiment_effect: float
    launch_date: dt.date
    lateness_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> WorldSpec:
        spec = cls(**{field: getattr(settings, name) for field, name in SETTING_OF.items()})
        spec.check()
        return spec

    def check(self) -> None:
        if self.seed < 0:
            raise WorldError(f"world_seed must be >= 0, got {self.seed}")
        for name in ("days", "users", "artists", "tracks", "events_per_day"):
            if getattr(self, name) < 1:
                raise WorldError(f"world_{name} must be at least 1, got {getattr(self, name)}")
        if self.tracks < self.artists:
            raise WorldError(
                f"world_tracks ({self.tracks}) must be at least world_artists ({self.artists}): "
                "every artist has a track"
            )
        if self.experiment_days < 0:
            raise WorldError(f"world_experiment_days must be >= 0, got {self.experiment_days}")
        if not -0.5 <= self.experiment_effect <= 1.0:
            raise WorldError(
                "world_experiment_effect must be a relative effect between -0.5 and 1.0, got "
                f"{self.experiment_effect}"
            )
        if self.lateness_days < 0:
            raise WorldError(f"lateness_days must be >= 0, got {self.lateness_days}")
        if self.start_date <= self.launch_date:
            raise WorldError(
                f"world_start_date ({self.start_date}) must be after service_launch_date "
                f"({self.launch_date}): the catalog grows between the two"
            )

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start_date)

    @property
    def end_ms(self) -> int:
        """The end of the last generated day (exclusive): the world's 'now'."""
        return self.start_ms + self.days * MS_PER_DAY

    @property
    def launch_ms(self) -> int:
        return epoch_ms(self.launch_date)

    def dates(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=i) for i in range(self.days)]

    def as_settings(self) -> dict[str, Any]:
        """The settings this world was made from, by setting name, as JSON values."""
        return {
            SETTING_OF[field]: value.isoformat() if isinstance(value, dt.date) else value
            for field, value in asdict(self).items()
        }


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """A validated copy of `settings` with world options (see OVERRIDABLE) replaced; None keeps
    the setting as it is."""
    unknown = set(overrides) - set(OVERRIDABLE)
    if unknown:
        raise WorldError(f"unknown world option(s) {sorted(unknown)}; known: {sorted(OVERRIDABLE)}")
    changes = {OVERRIDABLE[k]: v for k, v in overrides.items() if v is not None}
    if not changes:
        return settings
    # Re-validate through the model so an override gets the same checks as the environment.
    try:
        return type(settings).model_validate({**settings.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise WorldError(f"invalid world option: {problems}") from exc
