"""warehouse: copy what changed in the lake into PostgreSQL schema `raw`, then run the dbt project
through Cosmos in watcher mode: one `dbt build` (task `dbt.dbt_producer_watcher`, after the
source freshness checks) runs every model and test, and every source freshness check, model and
model's tests is its own task, wired in dbt's lineage, that reports that node's result from the
build (a failed model or test fails its task and the run).

Runs whenever ingestion has refreshed silver/events or training has registered or published a
model (any of the three assets, from the `warehouse` stage of `orchestration.stages`): the load
is incremental, so a run copies only what changed. Its last task takes the decision on each
running A/B experiment from the marts just built (experiments/decision.py): promote, stop or
continue, recorded in models/experiment_decisions.

Parsing runs no dbt and reads no settings: the dbt graph comes from the manifest `make setup`
builds with `dbt parse` (DBT_MANIFEST; rebuilt when a dbt file changes), and the warehouse
connection (with its password) is set by a pre_execute hook on each dbt task when it runs. The
build is one dbt process (a per-node task reruns its node alone only on a retry). Logic lives
in `warehouse` (`warehouse.watcher` wires the build and its reporting tasks) and `dbt/`.
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

from audotics.lake import tables
from orchestration.airflow_support import DEFAULT_ARGS, START_DATE, outlets, schedule
from orchestration.stages import WAREHOUSE
from warehouse.dbt import DBT_PROFILE, DBT_PROJECT_DIR, DBT_TARGET, dbt_executable
from warehouse.watcher import report_after_build, warehouse_connection

# dbt's own default target folder; `make setup` writes it (Makefile: DBT_MANIFEST).
DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
if not DBT_MANIFEST.is_file():
    raise FileNotFoundError(f"{DBT_MANIFEST} is missing: `make setup` builds it (dbt parse)")


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
        # One `dbt build` for the whole project, by the venv's dbt (PATH need not include the
        # venv). A subprocess, not dbtRunner: in-process, Cosmos turns each of dbt's events
        # (debug ones too) into JSON in Python, which made the build about 1.5x slower here.
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt_executable(),
        ),
        operator_args={"pre_execute": warehouse_connection},
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            # A test over several models (relationships, reconciliations) runs as its own task
            # once all of them are built, not with the first of them.
            should_detach_multiple_parents_tests=True,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            emit_datasets=False,  # no lineage backend here; marts are not Airflow assets
            # Exposures document the dashboards and the API for analysts: nothing to run.
            exclude=["resource_type:exposure"],
        ),
    )

    @task(outlets=outlets(WAREHOUSE, tables.EXPERIMENT_DECISIONS))
    def decide_experiments() -> list[dict]:
        """Promote, stop or continue each running experiment from mart_experiment_results."""
        from audotics.settings import get_settings
        from experiments.decision import decide_running

        return [decision.summary() for decision in decide_running(get_settings())]

    report_after_build(dbt, load_raw())
    dbt >> decide_experiments()  # after every node of the build
