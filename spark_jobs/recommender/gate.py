"""The quality gate between a trained model and its publication.

A model is published only if, on its hold-out split at k,
1. its gate metric is above the popularity baseline's on the same split, and
2. a model is already published: it is not worse than that model's recorded metric by more
   than `margin` as a share of it (model >= published * (1 - margin)).
Otherwise it is rejected; the reason names the metric and both values.
"""

from __future__ import annotations

from dataclasses import dataclass

from audotics.errors import AudoticsError

PASSED = "passed the gate: "  # prefix of the registry reason of a model let through


class GateRejected(AudoticsError):
    """The model was not published; the message says why."""


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


def decide(
    metrics: dict[str, float],
    baseline_metrics: dict[str, float],
    published_metrics: dict[str, float] | None,
    *,
    metric: str,
    margin: float,
    published_version: str | None = None,
) -> GateDecision:
    if metric not in metrics or metric not in baseline_metrics:
        return GateDecision(False, f"{metric} is missing from the evaluation; cannot judge")
    value, baseline = metrics[metric], baseline_metrics[metric]
    if value <= baseline:
        return GateDecision(
            False, f"{metric} {value:.4f} does not beat the popularity baseline's {baseline:.4f}"
        )
    if published_metrics and metric in published_metrics:
        published = published_metrics[metric]
        floor = published * (1.0 - margin)
        if value < floor:
            return GateDecision(
                False,
                f"{metric} {value:.4f} is below the published model {published_version}'s "
                f"{published:.4f} by more than the {margin:.0%} margin (floor {floor:.4f})",
            )
        return GateDecision(
            True,
            f"{metric} {value:.4f} beats the baseline's {baseline:.4f} and is within "
            f"{margin:.0%} of the published {published_version}'s {published:.4f}",
        )
    return GateDecision(
        True, f"{metric} {value:.4f} beats the baseline's {baseline:.4f}; no model published yet"
    )
