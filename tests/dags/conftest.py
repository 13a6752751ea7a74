"""Fixtures of the DAG tests."""

from __future__ import annotations

import pytest

from audotics.settings import Settings
from tests.dags.chain import run_with_dags_test


@pytest.fixture(scope="session")
def dags_test_chain(isolated_platform, airflow_home) -> Settings:
    """The DAG chain run once with `airflow dags test`: its checks passed; its settings, whose
    tables other ways of running the chain are compared with."""
    return run_with_dags_test(isolated_platform, airflow_home)
