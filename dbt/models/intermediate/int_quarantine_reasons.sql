-- One row per quarantined line and reason: a line that broke several rules counts once per rule.
with quarantined as (
    select * from {{ ref('stg_quarantine_events') }}
)

select
    quarantined.landing_date,
    quarantined.source_file,
    quarantined.line_number,
    reason.reason,
    quarantined.ingest_run_id
from quarantined
cross join lateral unnest(quarantined.reasons) as reason (reason)
