-- The sample-ratio-mismatch check of each experiment and day: Pearson's chi-square of the
-- exposed users per arm against the planned shares, and its p-value (arms - 1 degrees of
-- freedom). A tiny p-value means the split is not the one planned: a bug in assignment or in
-- exposure logging, and no result of the experiment can be trusted.
with arm_days as (
    select * from {{ ref('int_experiment_arm_days') }}
),

expected as (
    select
        experiment_id,
        result_date,
        exposed_users,
        planned_share * sum(exposed_users) over (
            partition by experiment_id, result_date
        ) as expected_users
    from arm_days
),

chi_square as (
    select
        experiment_id,
        result_date,
        sum(exposed_users) as exposed_users,
        count(*) - 1 as degrees_of_freedom,
        coalesce(sum((exposed_users - expected_users) ^ 2 / nullif(expected_users, 0)), 0)
            as srm_chi_square
    from expected
    group by experiment_id, result_date
)

select
    experiment_id,
    result_date,
    exposed_users,
    degrees_of_freedom,
    srm_chi_square,
    {{ chi_square_p_value('srm_chi_square', 'degrees_of_freedom') }} as srm_p_value
from chi_square
