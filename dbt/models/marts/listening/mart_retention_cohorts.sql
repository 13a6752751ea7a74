-- Weekly signup cohorts (ISO weeks) and how many of their users were active in each week since
-- signup (week 0 = the signup week). Only weeks inside the event history appear, so old cohorts
-- start at the first observed week; is_complete_week marks weeks observed from Monday to Sunday.
with users as (
    select
        user_id,
        signup_week as cohort_week
    from {{ ref('dim_users') }}
),

cohorts as (
    select
        cohort_week,
        count(*) as cohort_size
    from users
    group by cohort_week
),

observed as (
    select
        min(date_day) as first_date,
        max(date_day) as last_date,
        min(week_start) as first_week,
        max(week_start) as last_week
    from {{ ref('int_date_spine') }}
),

cohort_weeks as (
    select
        cohorts.cohort_week,
        cohorts.cohort_size,
        weeks.week_start::date as activity_week,
        (
            weeks.week_start::date >= observed.first_date
            and weeks.week_start::date + 6 <= observed.last_date
        ) as is_complete_week
    from cohorts
    cross join observed
    cross join lateral generate_series(
        greatest(cohorts.cohort_week, observed.first_week),
        observed.last_week,
        interval '7 days'
    ) as weeks (week_start)
),

active as (
    select
        users.cohort_week,
        {{ week_start('activity.activity_date') }} as activity_week,
        count(distinct activity.user_id) as active_users
    from {{ ref('fct_daily_user_activity') }} as activity
    inner join users on activity.user_id = users.user_id
    group by users.cohort_week, {{ week_start('activity.activity_date') }}
)

select
    cohort_weeks.cohort_week,
    (cohort_weeks.activity_week - cohort_weeks.cohort_week) / 7 as weeks_since_signup,
    cohort_weeks.activity_week,
    cohort_weeks.cohort_size,
    coalesce(active.active_users, 0) as active_users,
    {{ safe_ratio('coalesce(active.active_users, 0)', 'cohort_weeks.cohort_size') }}
        as retention_rate,
    cohort_weeks.is_complete_week
from cohort_weeks
left join active
    on
        cohort_weeks.cohort_week = active.cohort_week
        and cohort_weeks.activity_week = active.activity_week
