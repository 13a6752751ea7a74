-- The first and last landing day (both null before the first ingestion): the bounds of the
-- page's date range.
select
    min(landing_date) as first_day,
    max(landing_date) as last_day
from marts.mart_data_quality
