with source as (
    select * from {{ source('lake', 'quarantine_events') }}
),

renamed as (
    select
        source_file,
        line_number,
        raw as raw_line,
        reasons,
        run_id as ingest_run_id,
        quarantined_at,
        landing_date,
        _loaded_at as loaded_at
    from source
)

select * from renamed
