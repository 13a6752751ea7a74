-- The cohort triangle as of :end: the latest :cohorts weekly signup cohorts (ISO weeks) that
-- signed up from the week of :start on, each over its first :weeks weeks since signup, and the
-- share of the cohort active in each. Bounded here, not in the page: the mart holds every
-- cohort by every week since.
with latest_cohorts as (
    select distinct cohort_week
    from marts.mart_retention_cohorts
    where
        cohort_week >= cast(date_trunc('week', cast(:start as date)) as date)
        and cohort_week <= :end
    order by cohort_week desc
    limit :cohorts
)

select
    cohorts.cohort_week,
    cohorts.weeks_since_signup,
    cohorts.cohort_size,
    cohorts.active_users,
    cohorts.retention_rate,
    cohorts.is_complete_week
from marts.mart_retention_cohorts as cohorts
inner join latest_cohorts on cohorts.cohort_week = latest_cohorts.cohort_week
where cohorts.weeks_since_signup < :weeks and cohorts.activity_week <= :end
order by cohorts.cohort_week, cohorts.weeks_since_signup
