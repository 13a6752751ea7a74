"""The DAGs themselves, end to end with `airflow dags test`: the chain of tests/dags/chain.py
(each stage's outputs checked) on a small generated world."""

from __future__ import annotations

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings


def test_the_dags_chain_on_a_generated_world(dags_test_chain: Settings) -> None:
    runs = lake.read_arrow(dags_test_chain, tables.INGEST_RUNS).to_pylist()
    assert runs and {run["status"] for run in runs} == {"success"}
