-- The first and last day of the daily KPIs (both null before the first pipeline run): the
-- bounds of the page's date range.
select
    min(kpi_date) as first_day,
    max(kpi_date) as last_day
from marts.mart_daily_kpis
