with source as (
    select * from {{ source('lake', 'users') }}
),

renamed as (
    select
        user_id,
        username,
        email,
        country as country_code,
        birth_year::integer as birth_year,
        subscription,
        created_at as signed_up_at,
        {{ utc_date('created_at') }} as signup_date,
        updated_at,
        valid_from,
        valid_to,
        is_current,
        _loaded_at as loaded_at
    from source
)

select * from renamed
