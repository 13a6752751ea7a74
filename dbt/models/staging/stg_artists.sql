with source as (
    select * from {{ source('lake', 'artists') }}
),

renamed as (
    select
        artist_id,
        name as artist_name,
        country as country_code,
        genre,
        created_at,
        updated_at,
        valid_from,
        valid_to,
        is_current,
        _loaded_at as loaded_at
    from source
)

select * from renamed
