with source as (
    select * from {{ source('lake', 'playlists') }}
),

renamed as (
    select
        playlist_id,
        owner_user_id,
        name as playlist_name,
        is_public,
        created_at,
        updated_at,
        valid_from,
        valid_to,
        is_current,
        _loaded_at as loaded_at
    from source
)

select * from renamed
