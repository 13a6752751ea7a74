"""gdpr_erasure: complete every queued GDPR erasure request, hourly (the `gdpr erasure` stage of
`orchestration.stages`): those queued with `audotics gdpr-delete --queue`, and any a crash left
pending. Thin: the work is `orchestration.gdpr` (`queued_requests`, `erase_queued`), one mapped
task per request, one at a time (each rewrites the same lake tables). Only request ids pass
through XCom, never a user id: a task reads its user id from the queue in PostgreSQL."""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from audotics.lake import tables
from orchestration.airflow_support import DEFAULT_ARGS, START_DATE, outlets
from orchestration.stages import GDPR_ERASURE


@dag(
    dag_id=GDPR_ERASURE.dag_id,
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["gdpr"],
    doc_md=__doc__,
)
def gdpr_erasure_dag() -> None:
    @task
    def queued() -> list[str]:
        """The request ids of the queued erasures, oldest first."""
        from audotics.settings import get_settings
        from orchestration.gdpr import queued_requests

        return queued_requests(get_settings())

    @task(max_active_tis_per_dag=1, outlets=outlets(GDPR_ERASURE, tables.GDPR_REQUESTS))
    def erase(request_id: str) -> dict[str, object]:
        """Run the request's steps not done yet (a retry resumes where a failure stopped)."""
        from audotics.settings import get_settings
        from orchestration.gdpr import erase_queued

        request = erase_queued(get_settings(), request_id)
        return {"request_id": request.request_id, "removed": request.removed}

    erase.expand(request_id=queued())


gdpr_erasure_dag()
