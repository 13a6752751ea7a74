-- Weekly signup cohorts: the share of each cohort active N weeks after its signup week.
select
    cohort_week,
    weeks_since_signup,
    cohort_size,
    active_users,
    retention_rate,
    is_complete_week
from marts.mart_retention_cohorts
order by cohort_week, weeks_since_signup
