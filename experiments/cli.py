"""`audotics experiment start|status|stop|promote`: an experiment's record on the lake and its
traffic split in serving change together (serving/publish.py does the Redis side)."""

from __future__ import annotations

import json
import re

import click

from audotics.assignment import bounds
from audotics.settings import get_settings
from experiments import definition, lifecycle
from experiments.definition import METRICS, Arm, Experiment, ExperimentError

_ARM = re.compile(r"(?P<name>[^=]+)=(?P<version>[^:]+):(?P<share>.+)")


def _arm(text: str) -> Arm:
    match = _ARM.fullmatch(text)
    if not match:
        raise ExperimentError(f"arm {text!r}: write it as NAME=MODEL_VERSION:SHARE")
    try:
        share = float(match["share"])
    except ValueError:
        raise ExperimentError(f"arm {text!r}: share {match['share']!r} is not a number") from None
    return Arm(match["name"], match["version"], share)


@click.group("experiment")
def experiment_group() -> None:
    """A/B experiments between published model versions."""


@experiment_group.command("start")
@click.argument("experiment_id")
@click.option(
    "--arm",
    "arms",
    multiple=True,
    required=True,
    metavar="NAME=VERSION:SHARE",
    help="An arm, repeated; the first is the control. Shares sum to 1.",
)
@click.option(
    "--metric", type=click.Choice(sorted(METRICS)), required=True, help="The primary metric."
)
@click.option(
    "--guardrail", "guardrails", type=click.Choice(sorted(METRICS)), multiple=True,
    help="A guardrail metric, repeated.",
)  # fmt: skip
@click.option("--mde", type=float, required=True, help="Minimum detectable effect (relative).")
@click.option("--sample-size", type=int, required=True, help="Planned exposed users in all.")
@click.option("--salt", help="Hashed with each user id to assign arms (default: the id).")
def start(
    experiment_id: str, arms: tuple[str, ...], metric: str, guardrails: tuple[str, ...],
    mde: float, sample_size: int, salt: str | None,
) -> None:  # fmt: skip
    """Split user traffic between the arms' model versions, each already published to Redis."""
    from serving.publish import serve_experiment

    settings = get_settings()
    experiment = Experiment(
        experiment_id, salt or experiment_id, tuple(map(_arm, arms)), metric, guardrails, mde,
        sample_size,
    )  # fmt: skip
    existing = {e.experiment_id for e in definition.find_all(settings)}
    if experiment_id in existing:  # a reused id would mix two experiments' events
        raise ExperimentError(f"experiment id {experiment_id} is taken: choose another")
    uppers = bounds([arm.share for arm in experiment.arms])
    split = [
        (a.name, a.model_version, upper) for a, upper in zip(experiment.arms, uppers, strict=True)
    ]
    serve_experiment(settings, experiment.experiment_id, experiment.salt, split)
    definition.record(settings, experiment)
    click.echo(f"started {experiment_id}: " + ", ".join(
        f"{a.name}={a.model_version} ({a.share:.0%})" for a in experiment.arms))  # fmt: skip


@experiment_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON list of every experiment.")
def status(as_json: bool) -> None:
    """Every experiment with its arms, their model versions and shares."""
    experiments = definition.find_all(get_settings())
    if as_json:
        click.echo(json.dumps([e.summary() for e in experiments], indent=2))
        return
    for e in experiments:
        arms = ", ".join(f"{a.name}={a.model_version} ({a.share:.0%})" for a in e.arms)
        promoted = f" ({e.promoted_arm})" if e.promoted_arm else ""
        click.echo(f"{e.experiment_id}: {e.status}{promoted}; {arms}; metric {e.primary_metric}")


@experiment_group.command("stop")
@click.argument("experiment_id")
def stop(experiment_id: str) -> None:
    """End the experiment: every user gets the current model version again."""
    settings = get_settings()
    served = lifecycle.conclude(settings, lifecycle.running(settings, experiment_id))
    click.echo(f"stopped {experiment_id}: {served}")


@experiment_group.command("promote")
@click.argument("experiment_id")
@click.argument("arm")
def promote(experiment_id: str, arm: str) -> None:
    """Make ARM's model version the current one for everyone, and end the experiment."""
    settings = get_settings()
    experiment = lifecycle.running(settings, experiment_id)
    served = lifecycle.conclude(settings, experiment, promoted_arm=arm)
    click.echo(f"promoted {experiment_id} arm {arm}: {served}")
