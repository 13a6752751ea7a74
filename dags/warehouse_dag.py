"""warehouse: copy what changed in the lake into PostgreSQL schema `raw`, then run the dbt project
through Cosmos: every source freshness check, model and model's tests is its own task, wired in
dbt's lineage, after the load.

Runs whenever ingestion has refreshed silver/events or training has registered or published a
model (any of the three assets, from the `warehouse` stage of `orchestration.stages`): the load
is incremental, so a run copies only what changed.

Parsing runs no dbt and reads no settings: the dbt graph comes from the manifest `make setup`
builds with `dbt parse` (DBT_MANIFEST; rebuilt when a dbt file changes), and the warehouse
connection (with its password) is set by an interceptor on each dbt task when it runs. Each
task runs the venv's dbt in-process (ExecutionMode.LOCAL, dbtRunner). Logic lives in
`warehouse` and `dbt/`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
)

from orchestration.airflow_support import DEFAULT_ARGS, START_DATE, schedule
from orchestration.stages import WAREHOUSE
from warehouse.dbt import DBT_PROFILE, DBT_PROJECT_DIR, DBT_TARGET, dbt_env, dbt_executable

# dbt's own default target folder; `make setup` writes it (Makefile: DBT_MANIFEST).
DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
if not DBT_MANIFEST.is_file():
    raise FileNotFoundError(f"{DBT_MANIFEST} is missing: `make setup` builds it (dbt parse)")


def warehouse_connection(context, operator) -> None:
    """Cosmos interceptor, run by each dbt task before its command: the connection of the
    settings the worker has, in the variables dbt/profiles.yml reads."""
    from audotics.settings import get_settings

    operator.env = {**(operator.env or {}), **dbt_env(get_settings())}


with DAG(
    dag_id=WAREHOUSE.dag_id,
    description="Load the lake into schema raw, then dbt (staging, intermediate, marts).",
    schedule=schedule(WAREHOUSE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # two loads would only queue on the loader's lock
    default_args=DEFAULT_ARGS,
    tags=["warehouse", "dbt"],
    doc_md=__doc__,
):

    @task
    def load_raw() -> dict:
        """Copy the changed lake partitions and tables into schema raw."""
        from audotics.settings import get_settings
        from warehouse.load import load_warehouse

        return load_warehouse(get_settings()).as_dict()

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            DBT_PROJECT_DIR,
            manifest_path=DBT_MANIFEST,
            install_dbt_deps=False,  # the project has no packages
        ),
        profile_config=ProfileConfig(
            profile_name=DBT_PROFILE,
            target_name=DBT_TARGET,
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        # The venv's dbt, in-process (dbtRunner): no subprocess per task. Cosmos still checks
        # that the executable exists, and PATH need not include the venv.
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=dbt_executable(),
        ),
        operator_args={"interceptors": [warehouse_connection]},
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            # A test over several models (relationships, reconciliations) runs as its own task
            # once all of them are built, not with the first of them.
            should_detach_multiple_parents_tests=True,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            emit_datasets=False,  # no lineage backend here; marts are not Airflow assets
        ),
    )

    load_raw() >> dbt
