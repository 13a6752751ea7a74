with source as (
    select * from {{ source('lake', 'gdpr_requests') }}
),

renamed as (
    select
        request_id as gdpr_request_id,
        subject_sha256,
        requested_at,
        completed_at,
        coalesce(status, 'done') as request_status,
        quarantine_lines::jsonb as quarantine_lines,
        quarantine_erased_at,
        _loaded_at as loaded_at
    from source
)

select * from renamed
