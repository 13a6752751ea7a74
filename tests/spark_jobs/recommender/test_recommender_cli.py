"""`audotics evaluate` as a person runs it, and the DAG as Airflow parses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from demo.synthetic import clustered_interactions
from tests.support import REPO

AUDOTICS = str(Path(sys.executable).with_name("audotics"))
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "popularity")


def write_csv(path: Path) -> None:
    users, items, plays = clustered_interactions(150, 80, 4_000, clusters=8, seed=3)
    timestamps = 1_700_000_000 + np.arange(len(users)) * 60
    lines = ["user_id,item_id,weight,timestamp"]
    lines += [
        f"u{u},i{i},{w:g},{t}" for u, i, w, t in zip(users, items, plays, timestamps, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def test_evaluate_prints_one_json_object(tmp_path, settings_env) -> None:
    path = tmp_path / "interactions.csv"
    write_csv(path)
    command = [AUDOTICS, "evaluate", "--interactions", str(path), "--k", "5"]
    command += ["--split", "stratified:0.75", "--seed", "42", "--trials", "2"]
    done = subprocess.run(command, env=settings_env, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    for side in ("model", "baseline"):
        for metric in METRICS:
            assert 0.0 <= report[f"{side}.{metric}@5"] <= 1.0
    assert report["model.ndcg@5"] > report["baseline.ndcg@5"]
    assert report["engine"] == "implicit" and report["tuning"]["trials"] == 2
    assert set(report["params"]) == {
        "factors",
        "regularization",
        "alpha",
        "iterations",
        "weighting",
        "seed",
    }
    assert report["fit_seconds"] > 0
    assert report["users_evaluated"] > 100


def test_evaluate_names_the_bad_line(tmp_path, settings_env) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id,weight\nu1,a,1\nu2,b,lots\n")
    done = subprocess.run(
        [AUDOTICS, "evaluate", "--interactions", str(path)],
        env=settings_env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert f"error: {path}, line 3: weight 'lots' is not a number > 0" in done.stderr


def test_dag_parses_with_its_tasks_and_assets() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "train_recommender.py"))
    assert bag.import_errors == {}
    dag = bag.dags["train_recommender"]
    assert sorted(dag.task_ids) == [
        "as_of_date", "evaluate", "gate", "recommend", "register", "train",
    ]  # fmt: skip
    assert dag.task_dict["train"].upstream_task_ids == {"as_of_date"}
    outlets = {asset.name for task in dag.tasks for asset in task.outlets}
    assert {"gold/recommendations", "gold/similar_tracks", "models/registry"} <= outlets
    gate = dag.task_dict["gate"]
    assert gate.retries == 0 and gate.upstream_task_ids == {"evaluate"}
    assert dag.task_dict["register"].upstream_task_ids == {"gate"}
