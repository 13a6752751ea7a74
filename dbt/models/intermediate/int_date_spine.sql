-- Every day from the first to the last event date, so days without events still get a row.
with bounds as (
    select
        min(event_date) as first_date,
        max(event_date) as last_date
    from {{ ref('stg_events') }}
),

days as (
    select series.day_start::date as date_day
    from bounds
    cross join lateral generate_series(
        bounds.first_date, bounds.last_date, interval '1 day'
    ) as series (day_start)
)

select
    date_day,
    {{ week_start('date_day') }} as week_start
from days
