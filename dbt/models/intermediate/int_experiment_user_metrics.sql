{{ config(materialized='table') }}

-- Each exposed user's metrics, cumulative from the experiment's start through each day it ran,
-- beside the user's pre-experiment value of the same kind (the CUPED covariate). Long form, one
-- row per (experiment, day, user, metric), so the statistics are written once for every metric.
-- A user is exposed from the first event an arm of the experiment served them; their arm is
-- that event's (the assignment is stable, so it is their only one).
with experiments as (
    select
        experiment_id,
        started_at
    from {{ ref('stg_experiments') }}
),

events as (
    select * from {{ ref('stg_events') }}
    where event_type in ('play', 'skip')
),

exposures as (
    select
        experiment_id,
        user_id,
        (array_agg(experiment_arm order by event_at, event_id))[1] as arm,
        min(event_date) as first_exposed_date
    from {{ ref('stg_events') }}
    where experiment_id is not null
    group by experiment_id, user_id
),

result_days as (
    select
        experiments.experiment_id,
        result_day::date as result_date
    from experiments
    cross join lateral generate_series(
        experiments.started_at::date,
        (
            select max(exposures.first_exposed_date) from exposures
            where exposures.experiment_id = experiments.experiment_id
        ),
        interval '1 day'
    ) as result_day
),

-- The experiment period, per user and day: what its arm served, and all the user's listening.
user_days as (
    select
        exposures.experiment_id,
        exposures.user_id,
        events.event_date,
        sum(events.ms_played) filter (
            where events.experiment_id = exposures.experiment_id
        ) as served_ms,
        count(*) filter (where events.experiment_id = exposures.experiment_id) as served_listens,
        count(*) filter (
            where events.experiment_id = exposures.experiment_id
            and events.event_type = 'skip'
        ) as served_skips,
        sum(events.ms_played) as listening_ms
    from exposures
    inner join experiments on exposures.experiment_id = experiments.experiment_id
    inner join events
        on
            exposures.user_id = events.user_id
            and experiments.started_at <= events.event_at
    group by exposures.experiment_id, exposures.user_id, events.event_date
),

pre_period as (
    select
        exposures.experiment_id,
        exposures.user_id,
        sum(events.ms_played) as listening_ms,
        count(*) as listens,
        count(*) filter (where events.event_type = 'skip') as skips
    from exposures
    inner join experiments on exposures.experiment_id = experiments.experiment_id
    inner join events
        on
            exposures.user_id = events.user_id
            and experiments.started_at > events.event_at
            and events.event_at >= experiments.started_at
            - interval '1 day' * {{ var('experiment_pre_period_days') }}
    group by exposures.experiment_id, exposures.user_id
),

cumulative as (
    select
        result_days.experiment_id,
        result_days.result_date,
        exposures.user_id,
        exposures.arm,
        coalesce(sum(user_days.served_ms), 0) as served_ms,
        coalesce(sum(user_days.served_listens), 0) as served_listens,
        coalesce(sum(user_days.served_skips), 0) as served_skips,
        coalesce(sum(user_days.listening_ms), 0) as listening_ms
    from result_days
    inner join exposures
        on
            result_days.experiment_id = exposures.experiment_id
            and result_days.result_date >= exposures.first_exposed_date
    left join user_days
        on
            exposures.experiment_id = user_days.experiment_id
            and exposures.user_id = user_days.user_id
            and result_days.result_date >= user_days.event_date
    group by result_days.experiment_id, result_days.result_date, exposures.user_id, exposures.arm
),

metrics as (
    select
        cumulative.experiment_id,
        cumulative.result_date,
        cumulative.user_id,
        cumulative.arm,
        metric.name as metric,
        metric.value,
        metric.pre_value
    from cumulative
    left join pre_period
        on
            cumulative.experiment_id = pre_period.experiment_id
            and cumulative.user_id = pre_period.user_id
    cross join lateral (
        values
        (
            'recommendation_minutes', cumulative.served_ms / 60000.0,
            coalesce(pre_period.listening_ms, 0) / 60000.0
        ),
        (
            'listening_minutes', cumulative.listening_ms / 60000.0,
            coalesce(pre_period.listening_ms, 0) / 60000.0
        ),
        (
            'skip_rate', {{ safe_ratio('cumulative.served_skips', 'cumulative.served_listens') }},
            {{ safe_ratio('pre_period.skips', 'pre_period.listens') }}
        )
    ) as metric (name, value, pre_value)
)

select
    experiment_id,
    result_date,
    user_id,
    arm,
    metric,
    value::double precision as metric_value,
    pre_value::double precision as pre_period_value
from metrics
