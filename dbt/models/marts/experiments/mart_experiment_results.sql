-- The results of every A/B experiment, per day it ran (cumulative from its start), arm and
-- metric: the arm's mean per exposed user and, for each arm but the control, its relative
-- difference from the control with a 95% interval (Welch standard errors, the delta method for
-- the ratio), raw and CUPED-adjusted with each user's pre-experiment value; beside it the
-- sample-ratio-mismatch p-value of the day. The decision step (experiments/decision.py) reads
-- the last day of each running experiment.
with user_metrics as (
    select * from {{ ref('int_experiment_user_metrics') }}
    where metric_value is not null
),

experiments as (
    select * from {{ ref('stg_experiments') }}
),

-- A user without a pre-period value (no listening before) gets the day's mean covariate.
covariates as (
    select
        *,
        coalesce(pre_period_value, avg(pre_period_value) over same_day) as covariate
    from user_metrics
    window same_day as (partition by experiment_id, result_date, metric)
),

-- CUPED's theta, pooled over the arms: the regression slope of the metric on its covariate.
thetas as (
    select
        experiment_id,
        result_date,
        metric,
        coalesce(covar_samp(metric_value, covariate) / nullif(var_samp(covariate), 0), 0)
            as theta,
        avg(covariate) as covariate_mean
    from covariates
    group by experiment_id, result_date, metric
),

adjusted as (
    select
        covariates.experiment_id,
        covariates.result_date,
        covariates.metric,
        covariates.arm,
        covariates.metric_value,
        covariates.metric_value - thetas.theta * (covariates.covariate - thetas.covariate_mean)
            as adjusted_value
    from covariates
    inner join thetas
        on
            covariates.experiment_id = thetas.experiment_id
            and covariates.result_date = thetas.result_date
            and covariates.metric = thetas.metric
),

arm_stats as (
    select
        experiment_id,
        result_date,
        metric,
        arm,
        count(*) as users_measured,
        avg(metric_value) as mean_value,
        coalesce(var_samp(metric_value), 0) as variance,
        avg(adjusted_value) as adjusted_mean,
        coalesce(var_samp(adjusted_value), 0) as adjusted_variance
    from adjusted
    group by experiment_id, result_date, metric, arm
),

arm_days as (
    select * from {{ ref('int_experiment_arm_days') }}
),

compared as (
    select
        arm_days.experiment_id,
        arm_days.result_date,
        arm_days.arm,
        arm_days.model_version,
        arm_days.is_control,
        arm_days.planned_share,
        arm_days.exposed_users,
        stats.metric,
        stats.users_measured,
        stats.mean_value,
        case
            when not arm_days.is_control then
                {{ safe_ratio('stats.mean_value', 'control.mean_value') }} - 1
        end as lift,
        case when not arm_days.is_control then {{ lift_standard_error(
            'stats.mean_value', 'stats.variance', 'stats.users_measured',
            'control.mean_value', 'control.variance', 'control.users_measured') }} end
            as lift_standard_error,
        case
            when not arm_days.is_control then
                {{ safe_ratio('stats.adjusted_mean', 'control.adjusted_mean') }} - 1
        end as cuped_lift,
        case when not arm_days.is_control then {{ lift_standard_error(
            'stats.adjusted_mean', 'stats.adjusted_variance', 'stats.users_measured',
            'control.adjusted_mean', 'control.adjusted_variance', 'control.users_measured') }} end
            as cuped_lift_standard_error
    from arm_days
    inner join arm_stats as stats
        on
            arm_days.experiment_id = stats.experiment_id
            and arm_days.result_date = stats.result_date
            and arm_days.arm = stats.arm
    inner join arm_days as control_arm
        on
            arm_days.experiment_id = control_arm.experiment_id
            and arm_days.result_date = control_arm.result_date
            and control_arm.is_control
    inner join arm_stats as control
        on
            control_arm.experiment_id = control.experiment_id
            and control_arm.result_date = control.result_date
            and control_arm.arm = control.arm
            and stats.metric = control.metric
),

srm as (
    select * from {{ ref('int_experiment_srm') }}
)

select
    compared.experiment_id,
    compared.result_date,
    compared.arm,
    compared.model_version,
    compared.is_control,
    compared.planned_share,
    compared.exposed_users,
    compared.metric,
    case
        when compared.metric = experiments.primary_metric then 'primary'
        when experiments.guardrails ? compared.metric then 'guardrail'
        else 'secondary'
    end as metric_role,
    compared.users_measured,
    compared.mean_value,
    compared.lift,
    compared.lift - 1.96 * compared.lift_standard_error as lift_ci_low,
    compared.lift + 1.96 * compared.lift_standard_error as lift_ci_high,
    compared.cuped_lift,
    compared.cuped_lift - 1.96 * compared.cuped_lift_standard_error as cuped_lift_ci_low,
    compared.cuped_lift + 1.96 * compared.cuped_lift_standard_error as cuped_lift_ci_high,
    srm.srm_p_value,
    experiments.planned_sample_size,
    srm.exposed_users >= experiments.planned_sample_size as sample_size_reached,
    experiments.experiment_status
from compared
inner join experiments on compared.experiment_id = experiments.experiment_id
inner join srm
    on
        compared.experiment_id = srm.experiment_id
        and compared.result_date = srm.result_date
