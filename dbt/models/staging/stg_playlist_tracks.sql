with source as (
    select * from {{ source('lake', 'playlist_tracks') }}
),

renamed as (
    select
        playlist_id,
        track_id,
        position::integer as track_position,
        added_at,
        updated_at,
        valid_from,
        valid_to,
        is_current,
        _loaded_at as loaded_at
    from source
)

select * from renamed
