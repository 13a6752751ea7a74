-- The quarantined lines of each landing day are the ones its latest ingestion run counted.
with quarantined as (
    select
        landing_date,
        count(*) as quarantined_lines
    from {{ ref('stg_quarantine_events') }}
    group by landing_date
)

select
    runs.landing_date,
    runs.quarantine_rows,
    coalesce(quarantined.quarantined_lines, 0) as quarantined_lines
from {{ ref('int_ingest_runs_by_day') }} as runs
left join quarantined on runs.landing_date = quarantined.landing_date
where runs.quarantine_rows != coalesce(quarantined.quarantined_lines, 0)
