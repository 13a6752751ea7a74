-- Daily KPIs of the days :start to :end: active users, listening, skips and signups.
-- WAU and MAU are rolling 7- and 30-day windows; before 30 days of history they undercount
-- (has_full_mau_window is false there).
select
    kpi_date,
    daily_active_users,
    weekly_active_users,
    monthly_active_users,
    listening_hours,
    plays,
    skips,
    skip_rate,
    new_users,
    has_full_mau_window
from marts.mart_daily_kpis
where kpi_date between :start and :end
order by kpi_date
