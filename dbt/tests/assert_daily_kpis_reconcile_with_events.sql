-- Plays, skips and DAU of the KPI mart equal what the event fact says, day by day.
with from_events as (
    select
        event_date,
        count(*) filter (where is_play) as plays,
        count(*) filter (where is_skip) as skips,
        count(distinct user_id) as daily_active_users
    from {{ ref('fct_listening_events') }}
    group by event_date
)

select
    kpis.kpi_date,
    kpis.plays,
    from_events.plays as event_plays,
    kpis.skips,
    from_events.skips as event_skips,
    kpis.daily_active_users,
    from_events.daily_active_users as event_daily_active_users
from {{ ref('mart_daily_kpis') }} as kpis
left join from_events on kpis.kpi_date = from_events.event_date
where
    kpis.plays != coalesce(from_events.plays, 0)
    or kpis.skips != coalesce(from_events.skips, 0)
    or kpis.daily_active_users != coalesce(from_events.daily_active_users, 0)
