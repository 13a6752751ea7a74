-- The run whose output the lake holds for each landing day: every rerun replaces the day's
-- slice (success or not), so the latest run counts and earlier ones do not.
with runs as (
    select * from {{ ref('stg_ingest_runs') }}
)

select distinct on (landing_date)
    landing_date,
    ingest_run_id,
    run_status,
    input_records,
    silver_rows,
    quarantine_rows,
    duplicate_rows,
    finished_at
from runs
order by landing_date asc, finished_at desc nulls last, ingest_run_id desc
