-- Exposed users per arm and day of each experiment (cumulative from its start), every arm
-- present on every day the experiment has results, with its planned share.
with arms as (
    select * from {{ ref('int_experiment_arms') }}
),

user_metrics as (
    select * from {{ ref('int_experiment_user_metrics') }}
    where metric = 'recommendation_minutes' -- one row per exposed user and day
),

result_days as (
    select distinct
        experiment_id,
        result_date
    from user_metrics
),

exposed as (
    select
        experiment_id,
        result_date,
        arm,
        count(*) as exposed_users
    from user_metrics
    group by experiment_id, result_date, arm
)

select
    arms.experiment_id,
    result_days.result_date,
    arms.arm,
    arms.model_version,
    arms.is_control,
    arms.planned_share,
    coalesce(exposed.exposed_users, 0) as exposed_users
from arms
inner join result_days on arms.experiment_id = result_days.experiment_id
left join exposed
    on
        arms.experiment_id = exposed.experiment_id
        and result_days.result_date = exposed.result_date
        and arms.arm = exposed.arm
