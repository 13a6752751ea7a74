-- One row per user and day with at least one event: the base of DAU/WAU/MAU and retention.
with events as (
    select * from {{ ref('fct_listening_events') }}
)

select
    user_id,
    event_date as activity_date,
    count(*) as events,
    count(*) filter (where is_play) as plays,
    count(*) filter (where is_skip) as skips,
    count(*) filter (where event_type = 'like') as likes,
    count(*) filter (where event_type = 'playlist_add') as playlist_adds,
    count(*) filter (where is_play and is_recommended) as recommended_plays,
    count(distinct track_id) filter (where is_listening_start) as distinct_tracks,
    coalesce(sum(ms_played) filter (where is_listening_start), 0)::bigint as ms_played,
    coalesce(sum(hours_played) filter (where is_listening_start), 0) as listening_hours,
    min(event_at) as first_event_at,
    max(event_at) as last_event_at
from events
group by user_id, event_date
