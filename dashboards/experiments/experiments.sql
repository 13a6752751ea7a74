-- The experiments with results, newest first: their status, promoted arm, start and primary
-- metric from the experiment registry (staging.stg_experiments; the mart's status if the
-- registry lacks the experiment), and the first and last day their results run through.
with results as (
    select
        experiment_id,
        min(result_date) as first_result_date,
        max(result_date) as last_result_date,
        (array_agg(experiment_status order by result_date desc))[1] as experiment_status
    from marts.mart_experiment_results
    group by experiment_id
)

select
    results.experiment_id,
    coalesce(experiments.experiment_status, results.experiment_status) as experiment_status,
    experiments.promoted_arm,
    experiments.started_at,
    experiments.primary_metric,
    results.first_result_date,
    results.last_result_date
from results
left join staging.stg_experiments as experiments
    on results.experiment_id = experiments.experiment_id
order by
    experiments.started_at desc nulls last,
    results.first_result_date desc,
    results.experiment_id desc
