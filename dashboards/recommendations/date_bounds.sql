-- The first and last day a model version was trained or served (both null before the first
-- pipeline run): the bounds of the page's date range.
select
    least(min(first_served_date), min(trained_at)::date) as first_day,
    greatest(max(last_served_date), max(trained_at)::date) as last_day
from marts.mart_recommendation_performance
