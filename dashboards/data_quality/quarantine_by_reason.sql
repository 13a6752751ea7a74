-- Quarantine rate per landing day and reason (every reason seen so far, zero when absent).
-- A line breaking several rules counts under each, so the reasons do not add up to the day.
select
    landing_date,
    reason,
    quarantined_records,
    quarantine_rate
from marts.mart_data_quality
order by landing_date, reason
