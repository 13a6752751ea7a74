"""Publish the registry's published model into Redis whenever training has updated both gold
tables it serves. Thin: the work is `serving.publish.publish_recommendations`."""

from __future__ import annotations

from airflow.sdk import dag, task

from audotics.assets import lake_asset
from audotics.orchestration import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="publish_recommendations",
    schedule=[lake_asset("gold", "recommendations"), lake_asset("gold", "similar_tracks")],
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
