with source as (
    select * from {{ source('lake', 'model_registry') }}
),

renamed as (
    select
        model_version,
        engine as model_engine,
        params::jsonb as params,
        data_as_of,
        data_version,
        metrics::jsonb as metrics,
        baseline_metrics::jsonb as baseline_metrics,
        status as model_status,
        reason as status_reason,
        created_at as trained_at,
        status_changed_at,
        _loaded_at as loaded_at
    from source
)

select * from renamed
