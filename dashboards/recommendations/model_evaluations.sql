-- Offline metrics of the model versions :versions beside the popularity baseline's, oldest
-- model first.
select
    model_version,
    model_status,
    metric_name,
    metric_value,
    baseline_value,
    relative_lift
from marts.mart_model_evaluations
where model_version = any(:versions)
order by trained_at, model_version, metric_name
