with source as (
    select * from {{ source('lake', 'recommendations') }}
),

renamed as (
    select
        model_version,
        user_id,
        track_id,
        rank::integer as recommendation_rank,
        score,
        source as recommendation_source,
        _loaded_at as loaded_at
    from source
)

select * from renamed
