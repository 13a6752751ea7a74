"""The nightly decision on every running experiment, from its results in the warehouse
(`marts.mart_experiment_results`, last day), recorded on the lake (models/experiment_decisions).

- A sample-ratio mismatch (p < SRM_ALPHA) stops the experiment: the split is broken, so nothing
  it measured can be trusted.
- Before the planned sample size, it continues (no peeking at significance).
- At the planned sample size it promotes the challenger whose primary metric is significantly
  better (CUPED 95% interval clear of zero, the right way) with no guardrail significantly worse;
  the best such challenger if several; otherwise it stops and the control stays.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from audotics import db, lake
from audotics.assignment import SRM_ALPHA
from audotics.lake.tables import EXPERIMENT_DECISIONS
from audotics.settings import Settings
from experiments import definition, lifecycle
from experiments.definition import METRICS, Experiment

RESULTS = "marts.mart_experiment_results"


@dataclass(frozen=True)
class Decision:
    experiment_id: str
    decision: str  # continue, promote or stop
    reason: str
    results_as_of: dt.date | None = None
    arm: str | None = None  # the arm promoted
    exposed_users: int | None = None
    primary_lift: float | None = None  # of the challenger decided on (or the best one)
    primary_lift_ci_low: float | None = None
    primary_lift_ci_high: float | None = None
    srm_p_value: float | None = None

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "results_as_of": definition.iso(self.results_as_of)}

    def line(self) -> str:
        lift = (
            f"; {self.arm or 'challenger'} {self.primary_lift:+.1%} "
            f"[{self.primary_lift_ci_low:+.1%}, {self.primary_lift_ci_high:+.1%}]"
            if self.primary_lift is not None
            else ""
        )
        srm = f"; SRM p {self.srm_p_value:.3g}" if self.srm_p_value is not None else ""
        return f"{self.experiment_id}: {self.decision} ({self.reason}){lift}{srm}"


def _significance(row: dict[str, Any]) -> int:
    """+1 significantly better, -1 significantly worse, 0 neither (CUPED interval)."""
    better = 1 if METRICS[row["metric"]] == "higher" else -1
    if row["cuped_lift"] is None:  # the control's mean is 0: no relative difference
        return 0
    if row["cuped_lift_ci_low"] > 0:
        return better
    if row["cuped_lift_ci_high"] < 0:
        return -better
    return 0


def decide(experiment: Experiment, rows: list[dict[str, Any]]) -> Decision:
    """The decision on `experiment` from its results of one day (every arm and metric)."""
    if not rows:
        return Decision(experiment.experiment_id, "continue", "no exposed users yet")
    first = rows[0]
    exposed = sum(r["exposed_users"] for r in rows if r["metric"] == experiment.primary_metric)
    facts = {
        "results_as_of": first["result_date"],
        "exposed_users": exposed,
        "srm_p_value": first["srm_p_value"],
    }
    primaries = [
        r for r in rows if r["metric"] == experiment.primary_metric and not r["is_control"]
    ]
    best = max(primaries, key=_cuped_lift)

    def verdict(decision: str, reason: str, shown: dict[str, Any], arm: str | None = None):
        return Decision(
            experiment.experiment_id, decision, reason, arm=arm, **facts,
            primary_lift=shown["cuped_lift"], primary_lift_ci_low=shown["cuped_lift_ci_low"],
            primary_lift_ci_high=shown["cuped_lift_ci_high"],
        )  # fmt: skip

    if first["srm_p_value"] < SRM_ALPHA:
        reason = f"sample ratio mismatch: p {first['srm_p_value']:.2g} < {SRM_ALPHA}"
        return verdict("stop", reason, best)
    if exposed < experiment.sample_size:
        return verdict("continue", f"{exposed:,} of {experiment.sample_size:,} planned users", best)

    def no_guardrail_worse(primary: dict[str, Any]) -> bool:
        return not any(
            r["arm"] == primary["arm"] and r["metric"] in experiment.guardrails
            and _significance(r) == -1
            for r in rows
        )  # fmt: skip

    winners = [p for p in primaries if _significance(p) == 1 and no_guardrail_worse(p)]
    if not winners:
        return verdict("stop", "no challenger significantly better without a worse guardrail", best)
    reason = f"{experiment.primary_metric} significantly better, no guardrail worse"
    winner = max(winners, key=_cuped_lift)
    return verdict("promote", reason, winner, arm=winner["arm"])


def _cuped_lift(row: dict[str, Any]) -> float:
    return -math.inf if row["cuped_lift"] is None else row["cuped_lift"]


def report_lines(
    experiment: Experiment, results: list[dict[str, Any]], decision: Decision
) -> list[str]:
    """The decision with the arms and primary metric of the results it was taken on, as the
    nightly report prints it."""
    rows = [r for r in results if r["metric"] == experiment.primary_metric]
    as_of = f" (results through {decision.results_as_of})" if decision.results_as_of else ""
    lines = [f"experiment {decision.experiment_id}{as_of}, primary {experiment.primary_metric}:"]
    for r in rows:
        lift = "control" if r["is_control"] else (
            f"CUPED {r['cuped_lift']:+.1%} [{r['cuped_lift_ci_low']:+.1%}, "
            f"{r['cuped_lift_ci_high']:+.1%}], raw {r['lift']:+.1%} "
            f"[{r['lift_ci_low']:+.1%}, {r['lift_ci_high']:+.1%}]"
        )  # fmt: skip
        lines.append(
            f"  {r['arm']:<11} {r['model_version']}: {r['exposed_users']:,} users, "
            f"{r['mean_value']:.2f} per user; {lift}"
        )
    if decision.srm_p_value is not None:
        lines.append(f"  SRM p-value {decision.srm_p_value:.3g}")
    arm = f" {decision.arm}" if decision.arm else ""
    lines.append(f"  decision: {decision.decision}{arm} ({decision.reason})")
    return lines


def latest_results(settings: Settings, experiment_id: str) -> list[dict[str, Any]]:
    """The experiment's rows of the last day it has results for."""
    query = sa.text(
        f"select * from {RESULTS} where experiment_id = :id and result_date = "
        f"(select max(result_date) from {RESULTS} where experiment_id = :id)"
    )
    with db.engine(settings).connect() as conn:
        return [dict(row) for row in conn.execute(query, {"id": experiment_id}).mappings()]


def decide_running(settings: Settings) -> list[Decision]:
    """Decide on every running experiment, record each decision, and carry it out."""
    return [decision for decision, _ in decide_and_report(settings)]


def decide_and_report(settings: Settings) -> list[tuple[Decision, list[str]]]:
    """`decide_running`, each decision with its report lines (from the same results)."""
    decided = []
    for experiment in definition.find_all(settings):
        if experiment.status != "running":
            continue
        results = latest_results(settings, experiment.experiment_id)
        decision = decide(experiment, results)
        _record(settings, decision)
        if decision.decision != "continue":
            lifecycle.conclude(settings, experiment, promoted_arm=decision.arm)
        decided.append((decision, report_lines(experiment, results, decision)))
    return decided


def _record(settings: Settings, decision: Decision) -> None:
    row = asdict(decision) | {"decided_at": dt.datetime.now(dt.UTC)}
    lake.merge_arrow(
        settings, EXPERIMENT_DECISIONS,
        pa.Table.from_pylist([row], schema=EXPERIMENT_DECISIONS.schema), update=False,
        metadata={"writer": "experiments.decision", "experiment_id": decision.experiment_id},
    )  # fmt: skip
