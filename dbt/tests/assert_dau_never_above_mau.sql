-- DAU <= WAU <= MAU on every day: each window contains the shorter one.
select
    kpi_date,
    daily_active_users,
    weekly_active_users,
    monthly_active_users
from {{ ref('mart_daily_kpis') }}
where
    daily_active_users > weekly_active_users
    or weekly_active_users > monthly_active_users
