with source as (
    select * from {{ source('lake', 'experiments') }}
),

renamed as (
    select
        experiment_id,
        salt,
        arms::jsonb as arms,
        primary_metric,
        guardrails::jsonb as guardrails,
        mde as minimum_detectable_effect,
        sample_size as planned_sample_size,
        status as experiment_status,
        promoted_arm,
        created_at as started_at,
        status_changed_at,
        _loaded_at as loaded_at
    from source
)

select * from renamed
