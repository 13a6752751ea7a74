-- Each challenger's lift over the control on result day :day of experiment :experiment_id
-- (cumulative from its start), per metric: the primary metric first, then the guardrails, then
-- any secondary one. The CUPED lift and its 95% interval beside the raw ones, and the
-- control's mean for scale.
with results as (
    select *
    from marts.mart_experiment_results
    where experiment_id = :experiment_id and result_date = :day
)

select
    challengers.metric,
    challengers.metric_role,
    challengers.arm,
    challengers.model_version,
    challengers.users_measured,
    challengers.mean_value,
    controls.mean_value as control_mean_value,
    challengers.cuped_lift,
    challengers.cuped_lift_ci_low,
    challengers.cuped_lift_ci_high,
    challengers.lift,
    challengers.lift_ci_low,
    challengers.lift_ci_high,
    challengers.result_date
from results as challengers
left join results as controls
    on challengers.metric = controls.metric and controls.is_control
where not challengers.is_control
order by
    case challengers.metric_role when 'primary' then 0 when 'guardrail' then 1 else 2 end,
    challengers.metric,
    challengers.arm
