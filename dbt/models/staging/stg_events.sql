with source as (
    select * from {{ source('lake', 'events') }}
),

renamed as (
    select
        event_id,
        event_type,
        user_id,
        track_id,
        playlist_id,
        model_version,
        experiment as experiment_id,
        arm as experiment_arm,
        ts as event_at,
        event_date,
        landing_date,
        ms_played,
        context as listening_context,
        device,
        country as country_code,
        ingested_at,
        run_id as ingest_run_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
