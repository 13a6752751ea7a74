-- Each landing day's quarantine rate over all reasons (a line breaking several rules counts
-- once) of the days :start to :end, with the ingestion run it comes from.
select distinct
    landing_date,
    input_records,
    day_quarantined_records,
    day_quarantine_rate,
    ingest_run_id,
    run_status
from marts.mart_data_quality
where landing_date between :start and :end
order by landing_date
