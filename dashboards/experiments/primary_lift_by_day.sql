-- The primary metric's lift of each challenger of experiment :experiment_id per result day,
-- each day's results cumulative from the start: the CUPED lift and its 95% interval beside
-- the raw ones, and the users exposed so far.
select
    result_date,
    arm,
    model_version,
    metric,
    exposed_users,
    cuped_lift,
    cuped_lift_ci_low,
    cuped_lift_ci_high,
    lift,
    lift_ci_low,
    lift_ci_high,
    srm_p_value
from marts.mart_experiment_results
where experiment_id = :experiment_id and metric_role = 'primary' and not is_control
order by result_date, arm
