"""warehouse: copy what changed in the lake into PostgreSQL schema `raw`, then run the dbt project
through Cosmos: every source freshness check, model and model's tests is its own task, wired in
dbt's lineage, after the load.

Runs whenever ingestion has refreshed silver/events or training has registered or published a
model (any of the three assets): the load is incremental, so a run copies only what changed.
The dbt graph is read with `dbt ls` when the file is parsed (no packages and no manifest needed:
it works on a fresh clone; Cosmos caches the result) and each task runs the venv's dbt
in-process (ExecutionMode.LOCAL, dbtRunner). Logic lives in audotics.warehouse and dbt/.
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

from audotics.assets import lake_asset
from audotics.orchestration import DEFAULT_ARGS, START_DATE
from audotics.settings import get_settings
from audotics.warehouse import (
    DBT_PROFILE,
    DBT_PROJECT_DIR,
    DBT_TARGET,
    dbt_env,
    dbt_executable,
    load_warehouse,
)

with DAG(
    dag_id="warehouse",
    description="Load the lake into schema raw, then dbt (staging, intermediate, marts).",
    schedule=(
        lake_asset("silver", "events")
        | lake_asset("models", "registry")
        | lake_asset("gold", "recommendations")
    ),
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
        return load_warehouse(get_settings()).as_dict()

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            DBT_PROJECT_DIR,
            env_vars=dbt_env(get_settings()),  # the warehouse connection dbt/profiles.yml reads
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
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_behavior=TestBehavior.AFTER_EACH,
            # A test over several models (relationships, reconciliations) runs as its own task
            # once all of them are built, not with the first of them.
            should_detach_multiple_parents_tests=True,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            emit_datasets=False,  # no lineage backend here; marts are not Airflow assets
        ),
    )

    load_raw() >> dbt
