-- The registry's metrics and baseline_metrics JSON objects as rows: one per model and metric.
-- A metric that is not a JSON number (missing, null, text) has a null value.
with registry as (
    select * from {{ ref('stg_model_registry') }}
),

model_metrics as (
    select
        registry.model_version,
        metric.key as metric_name,
        case
            when jsonb_typeof(metric.value) = 'number'
                then (metric.value #>> '{}')::double precision
        end as metric_value
    from registry
    cross join lateral jsonb_each(coalesce(registry.metrics, '{}'::jsonb)) as metric
),

baseline_metrics as (
    select
        registry.model_version,
        metric.key as metric_name,
        case
            when jsonb_typeof(metric.value) = 'number'
                then (metric.value #>> '{}')::double precision
        end as baseline_value
    from registry
    cross join lateral jsonb_each(coalesce(registry.baseline_metrics, '{}'::jsonb)) as metric
)

select
    coalesce(model_metrics.model_version, baseline_metrics.model_version) as model_version,
    coalesce(model_metrics.metric_name, baseline_metrics.metric_name) as metric_name,
    model_metrics.metric_value,
    baseline_metrics.baseline_value
from model_metrics
full outer join baseline_metrics
    on
        model_metrics.model_version = baseline_metrics.model_version
        and model_metrics.metric_name = baseline_metrics.metric_name
