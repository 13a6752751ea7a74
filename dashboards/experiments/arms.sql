-- The arms of experiment :experiment_id on result day :day (cumulative from its start): users
-- exposed and their share of all exposed users beside the planned share, and the day's
-- sample-ratio-mismatch p-value (the same on every arm). The control first.
with arms as (
    -- one row per arm: the mart repeats the arm's columns on each metric's row
    select distinct
        arm,
        model_version,
        is_control,
        planned_share,
        exposed_users,
        srm_p_value,
        planned_sample_size,
        sample_size_reached,
        result_date
    from marts.mart_experiment_results
    where experiment_id = :experiment_id and result_date = :day
)

select
    arm,
    model_version,
    is_control,
    planned_share,
    exposed_users,
    exposed_users::double precision / nullif(sum(exposed_users) over (), 0) as exposed_share,
    srm_p_value,
    planned_sample_size,
    sample_size_reached,
    result_date
from arms
order by is_control desc, arm
