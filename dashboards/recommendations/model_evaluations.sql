-- Offline metrics of each model version beside the popularity baseline's, oldest model first.
select
    model_version,
    model_status,
    metric_name,
    metric_value,
    baseline_value,
    relative_lift
from marts.mart_model_evaluations
order by trained_at, model_version, metric_name
