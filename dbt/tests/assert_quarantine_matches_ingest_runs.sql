-- The quarantined lines of each landing day are the ones its latest ingestion run counted,
-- less those GDPR erasure removed after that run finished (a later run never saw them).
with quarantined as (
    select
        landing_date,
        count(*) as quarantined_lines
    from {{ ref('stg_quarantine_events') }}
    group by landing_date
),

runs as (
    select * from {{ ref('int_ingest_runs_by_day') }}
),

erased as (
    select
        runs.landing_date,
        sum(erasures.erased_lines) as erased_lines
    from runs
    inner join {{ ref('int_quarantine_erasures') }} as erasures
        on
            runs.landing_date = erasures.landing_date
            and runs.finished_at < erasures.erased_at
    group by runs.landing_date
)

select
    runs.landing_date,
    runs.quarantine_rows,
    coalesce(erased.erased_lines, 0) as erased_lines,
    coalesce(quarantined.quarantined_lines, 0) as quarantined_lines
from runs
left join quarantined on runs.landing_date = quarantined.landing_date
left join erased on runs.landing_date = erased.landing_date
where
    runs.quarantine_rows - coalesce(erased.erased_lines, 0)
    != coalesce(quarantined.quarantined_lines, 0)
