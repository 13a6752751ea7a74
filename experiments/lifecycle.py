"""How an experiment ends, by hand (`audotics experiment stop|promote`) or by the decision step:
its record on the lake changes status and, if the read API serves its arms, serving changes with
it (a promoted arm's version becomes current for everyone; a stopped one's users get the current
version again). An experiment serving does not run, like the demo world's, changes on the lake
only."""

from __future__ import annotations

from dataclasses import replace

from audotics.settings import Settings
from experiments import definition
from experiments.definition import Experiment, ExperimentError


def running(settings: Settings, experiment_id: str) -> Experiment:
    experiment = definition.get(settings, experiment_id)
    if experiment.status != "running":
        raise ExperimentError(f"experiment {experiment_id} is {experiment.status}, not running")
    return experiment


def conclude(settings: Settings, experiment: Experiment, promoted_arm: str | None = None) -> str:
    """Stop the experiment, or promote `promoted_arm`; returns what serving did."""
    from serving.publish import end_experiment, serving_experiment

    version = experiment.arm(promoted_arm).model_version if promoted_arm else None
    if serving_experiment(settings) == experiment.experiment_id:
        result = end_experiment(settings, promoted=version)
        served = result.line() if result else "every user gets the current version again"
    else:
        served = "not served by the read API: serving unchanged"
    status = "promoted" if promoted_arm else "stopped"
    definition.record(settings, replace(experiment, status=status, promoted_arm=promoted_arm))
    return served
