-- Quarantined lines that GDPR erasure removed, per request and landing day: the ingest run of
-- a day counted them if it finished before they were erased.
with requests as (
    select * from {{ ref('stg_gdpr_requests') }}
    where quarantine_erased_at is not null
)

select
    requests.gdpr_request_id,
    erased.key::date as landing_date,
    erased.value::bigint as erased_lines,
    requests.quarantine_erased_at as erased_at
from requests
cross join lateral jsonb_each_text(requests.quarantine_lines) as erased (key, value)
