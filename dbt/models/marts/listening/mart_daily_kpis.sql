-- One row per day from the first to the last event date: the headline numbers of the service.
-- WAU and MAU are rolling windows ending on the day (7 and 30 days).
with days as (
    select date_day from {{ ref('int_date_spine') }}
),

activity as (
    select * from {{ ref('fct_daily_user_activity') }}
),

active_users as (
    select
        days.date_day,
        count(distinct activity.user_id) filter (
            where activity.activity_date = days.date_day
        ) as daily_active_users,
        count(distinct activity.user_id) filter (
            where activity.activity_date > days.date_day - 7
        ) as weekly_active_users,
        count(distinct activity.user_id) as monthly_active_users
    from days
    left join activity
        on activity.activity_date between days.date_day - 29 and days.date_day
    group by days.date_day
),

listening as (
    select
        activity_date,
        sum(plays)::bigint as plays,
        sum(skips)::bigint as skips,
        sum(listening_hours) as listening_hours
    from activity
    group by activity_date
),

signups as (
    select
        signup_date,
        count(*) as new_users
    from {{ ref('dim_users') }}
    group by signup_date
)

select
    active_users.date_day as kpi_date,
    active_users.daily_active_users,
    active_users.weekly_active_users,
    active_users.monthly_active_users,
    {{ safe_ratio('active_users.daily_active_users', 'active_users.monthly_active_users') }}
        as dau_mau_ratio,
    coalesce(listening.plays, 0) as plays,
    coalesce(listening.skips, 0) as skips,
    {{ safe_ratio('listening.skips', 'listening.plays + listening.skips') }} as skip_rate,
    coalesce(listening.listening_hours, 0) as listening_hours,
    coalesce(signups.new_users, 0) as new_users,
    active_users.date_day - 29 >= min(active_users.date_day) over () as has_full_mau_window
from active_users
left join listening on active_users.date_day = listening.activity_date
left join signups on active_users.date_day = signups.signup_date
