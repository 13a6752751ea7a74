-- Each landing day's quarantine rate over all reasons (a line breaking several rules counts
-- once), with the ingestion run it comes from.
select distinct
    landing_date,
    input_records,
    day_quarantined_records,
    day_quarantine_rate,
    ingest_run_id,
    run_status
from marts.mart_data_quality
order by landing_date
