-- One row per user: the latest version of the account, its signup cohort and lifetime activity.
-- E-mail stays in staging: marts carry no contact data.
with latest_versions as (
    select distinct on (user_id) *
    from {{ ref('stg_users') }}
    order by user_id asc, valid_from desc
),

activity as (
    select
        user_id,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date,
        count(*) as active_days,
        sum(plays)::bigint as lifetime_plays,
        sum(listening_hours) as lifetime_listening_hours
    from {{ ref('fct_daily_user_activity') }}
    group by user_id
)

select
    latest_versions.user_id,
    latest_versions.username,
    latest_versions.country_code,
    latest_versions.birth_year,
    latest_versions.subscription,
    latest_versions.signed_up_at,
    latest_versions.signup_date,
    {{ week_start('latest_versions.signup_date') }} as signup_week,
    latest_versions.is_current as is_active_account,
    activity.first_active_date,
    activity.last_active_date,
    coalesce(activity.active_days, 0) as active_days,
    coalesce(activity.lifetime_plays, 0) as lifetime_plays,
    coalesce(activity.lifetime_listening_hours, 0) as lifetime_listening_hours,
    latest_versions.updated_at
from latest_versions
left join activity on latest_versions.user_id = activity.user_id
