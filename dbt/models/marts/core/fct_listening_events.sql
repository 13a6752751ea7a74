{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['event_id'], 'unique': true},
            {'columns': ['event_date']},
            {'columns': ['user_id']},
        ],
    )
}}

-- Incremental by partition: the loader copies a changed lake partition (an event_date) as a
-- whole with one new loaded_at, so the rows loaded since the last run are exactly the new and
-- changed partitions. delete+insert on event_id makes a reloaded partition replace its rows.
with events as (
    select * from {{ ref('stg_events') }}
    {% if is_incremental() %}
        where loaded_at > (
            select coalesce(max(current_fact.loaded_at), '-infinity')
            from {{ this }} as current_fact
        )
    {% endif %}
)

select
    event_id,
    event_type,
    user_id,
    track_id,
    playlist_id,
    model_version,
    event_at,
    event_date,
    landing_date,
    listening_context,
    device,
    country_code,
    ms_played,
    ms_played::double precision / 3600000 as hours_played,
    event_type = 'play' as is_play,
    event_type = 'skip' as is_skip,
    event_type in ('play', 'skip') as is_listening_start,
    listening_context = 'recommendation' as is_recommended,
    landing_date > event_date as is_late_arrival,
    ingest_run_id,
    loaded_at
from events
