-- Quarantine per landing day and reason: one row per day and every reason ever seen (zero when
-- absent that day), against the day's input records. A line with several reasons counts under
-- each, so per-reason rows must not be summed: day_quarantined_records is the day's total.
with runs as (
    select * from {{ ref('int_ingest_runs_by_day') }}
),

reasons as (
    select * from {{ ref('int_quarantine_reasons') }}
),

days as (
    select landing_date from runs
    union
    select landing_date from reasons
),

known_reasons as (
    select distinct reason from reasons
),

by_reason as (
    select
        landing_date,
        reason,
        count(*) as quarantined_records
    from reasons
    group by landing_date, reason
),

by_day as (
    select
        landing_date,
        count(*) as day_quarantined_records
    from {{ ref('stg_quarantine_events') }}
    group by landing_date
)

select
    days.landing_date,
    known_reasons.reason,
    coalesce(by_reason.quarantined_records, 0) as quarantined_records,
    runs.input_records,
    {{ safe_ratio('coalesce(by_reason.quarantined_records, 0)', 'runs.input_records') }}
        as quarantine_rate,
    coalesce(by_day.day_quarantined_records, 0) as day_quarantined_records,
    {{ safe_ratio('coalesce(by_day.day_quarantined_records, 0)', 'runs.input_records') }}
        as day_quarantine_rate,
    runs.ingest_run_id,
    runs.run_status
from days
cross join known_reasons
left join by_reason
    on days.landing_date = by_reason.landing_date and known_reasons.reason = by_reason.reason
left join runs on days.landing_date = runs.landing_date
left join by_day on days.landing_date = by_day.landing_date
