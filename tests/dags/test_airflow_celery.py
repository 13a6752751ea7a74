"""`audotics airflow --executor celery --workers 2`: metadata in PostgreSQL, Redis as the broker,
two Celery workers; the DAG chain of tests/dags/chain.py runs through it on the same world,
with the same checks, and gives the tables `airflow dags test` gave. (Fewer days would be
faster, but on two days the ALS model loses to the popularity baseline at the gate: a
different registry, not the same checks.) The chain stops before the warehouse DAG: on Celery
its hundred-odd Cosmos tasks would each be a worker process, in a test that took 8 to 10 minutes
on CI's two cores, and Celery adds nothing to what `airflow dags test` checks of them
(test_dags_end_to_end.py, test_warehouse_airflow.py)."""

from __future__ import annotations

import pytest
from psycopg import sql

from audotics import services
from audotics.settings import LOCAL_POSTGRES_APP_USER
from tests.dags.airflow_server import airflow_server, assert_quiet_task_logs
from tests.dags.chain import COMPARED, make_world, run_the_chain
from tests.support import comparable_rows

WORKERS = 2


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_dags_chain_on_celery_workers(
    isolated_platform, running_services, env_for, tmp_path, dags_test_chain
) -> None:
    settings, manifest = make_world(isolated_platform, "dags_celery")
    # Airflow's metadata in a database of its own, the broker in a Redis database of its own.
    metadata = "test_dags_celery_airflow"
    with services.postgres_admin_connection(running_services) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(metadata)))  # fmt: skip
        conn.execute(sql.SQL("create database {} owner {}").format(
            sql.Identifier(metadata), sql.Identifier(LOCAL_POSTGRES_APP_USER)))  # fmt: skip
    server_url, platform_db = settings.redis_dsn.rsplit("/", 1)
    env = {
        **env_for(settings),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AUDOTICS_AIRFLOW_DATABASE_URL": f"{settings.postgres_url.rsplit('/', 1)[0]}/{metadata}",
        "AUDOTICS_AIRFLOW_BROKER_URL": f"{server_url}/{int(platform_db) % 15 + 1}",
    }
    args = ("--executor", "celery", "--workers", str(WORKERS))
    with airflow_server(env, tmp_path / "airflow.log", *args) as server:
        server.wait_for_dag("ingest_events")
        assert len(server.processes("celery", "worker")) == WORKERS
        run_the_chain(settings, manifest, server.run, warehouse=False)
    # None of the libraries' noise in any task's log.
    assert_quiet_task_logs(tmp_path / "airflow", max_lines=600)
    for table in COMPARED:  # the same world through `airflow dags test`: the same tables
        assert comparable_rows(settings, table) == comparable_rows(dags_test_chain, table), table
