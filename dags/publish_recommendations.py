"""Publish the registry's published model into Redis whenever training has updated both gold
tables it serves (the `publish` stage of `orchestration.stages`). Thin: the work is
`serving.publish.publish_recommendations`."""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.airflow_support import DEFAULT_ARGS, START_DATE, schedule
from orchestration.stages import PUBLISH


@dag(
    dag_id=PUBLISH.dag_id,
    schedule=schedule(PUBLISH),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # publishes take a Redis lock; queue runs rather than fail them
    default_args=DEFAULT_ARGS,
    tags=["serving"],
    doc_md=__doc__,
)
def publish_recommendations_dag() -> None:
    @task
    def publish_recommendations() -> dict[str, object]:
        from audotics.settings import get_settings
        from serving.publish import publish_recommendations as publish

        return publish(get_settings()).summary()

    publish_recommendations()


publish_recommendations_dag()
