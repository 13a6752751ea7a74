-- One row per model version and offline metric: the model's value, the popularity baseline's,
-- and the lift, with the registry's verdict beside them.
with metrics as (
    select * from {{ ref('int_model_metrics') }}
),

registry as (
    select * from {{ ref('stg_model_registry') }}
)

select
    metrics.model_version,
    metrics.metric_name,
    metrics.metric_value,
    metrics.baseline_value,
    metrics.metric_value - metrics.baseline_value as lift,
    {{ safe_ratio('metrics.metric_value', 'metrics.baseline_value') }} - 1 as relative_lift,
    registry.model_engine,
    registry.model_status,
    registry.status_reason,
    registry.model_status = 'published' as is_published,
    registry.data_as_of,
    registry.data_version,
    registry.params,
    registry.trained_at,
    registry.status_changed_at
from metrics
inner join registry on metrics.model_version = registry.model_version
