with source as (
    select * from {{ source('lake', 'tracks') }}
),

renamed as (
    select
        track_id,
        artist_id,
        title,
        album,
        genre,
        duration_ms::integer as duration_ms,
        release_date,
        danceability,
        energy,
        valence,
        tempo,
        acousticness,
        instrumentalness,
        loudness as loudness_db,
        created_at,
        updated_at,
        valid_from,
        valid_to,
        is_current,
        _loaded_at as loaded_at
    from source
)

select * from renamed
