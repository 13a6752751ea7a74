with source as (
    select * from {{ source('lake', 'ingest_runs') }}
),

renamed as (
    select
        run_id as ingest_run_id,
        interval_start,
        interval_end,
        {{ utc_date('interval_start') }} as landing_date,
        input_records,
        bronze_rows,
        silver_rows,
        quarantine_rows,
        duplicate_rows,
        unknown_fields::jsonb as unknown_fields,
        started_at,
        finished_at,
        status as run_status,
        _loaded_at as loaded_at
    from source
)

select * from renamed
