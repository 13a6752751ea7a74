"""Wiring of the warehouse DAG's dbt task group in Cosmos' watcher mode: one `dbt build` (the
producer task) runs every model and test; a task per source, model and model's tests then reports
that node's result from the build. Imported by the DAG file (it needs Airflow, not dbt).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, TaskGroup
from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID

from audotics.settings import get_settings
from warehouse.dbt import dbt_env


def warehouse_connection(context: Any) -> None:
    """pre_execute hook of each dbt task: the connection of the settings the worker has, in the
    variables dbt/profiles.yml reads, read when the task runs (never when the DAG is parsed).
    Not a Cosmos interceptor: the producer runs its source freshness check before those."""
    operator = context["task"]
    operator.env = {**(operator.env or {}), **dbt_env(get_settings())}


def report_after_build(group: TaskGroup, load: BaseOperator) -> None:
    """Run the group's dbt build after `load`, and its per-node tasks after the build.

    Cosmos starts the per-node sensors beside the build and leaves their order to the
    producer's priority weight, which `airflow dags test` (and a one-slot pool) ignore: a sensor
    that starts first waits for a build that never starts. So the nodes with no parent in the
    group wait for the build's end marker (Cosmos' `..._done` task, which succeeds when the
    build did, and when a failed build was retried: the retry restores the first try's results
    and skips), and read each node's result then; the rest follow dbt's lineage as Cosmos wired
    it. A failed dbt test fails its task and the run; a failed load runs nothing of dbt.
    """
    tasks = {task.task_id: task for task in group.iter_tasks()}
    producer = tasks.pop(f"{group.group_id}.{PRODUCER_WATCHER_TASK_ID}")
    done = tasks.pop(f"{group.group_id}.{PRODUCER_WATCHER_DONE_TASK_ID}")
    load >> producer
    for task in tasks.values():
        if not task.upstream_task_ids & tasks.keys():
            done >> task
