-- One row per playlist: its current size and how it is listened to (plays started from it) and
-- grown (playlist_add events targeting it).
with playlists as (
    select distinct on (playlist_id) *
    from {{ ref('stg_playlists') }}
    order by playlist_id asc, valid_from desc
),

playlist_sizes as (
    select
        playlist_id,
        count(*) as track_count
    from {{ ref('stg_playlist_tracks') }}
    where is_current
    group by playlist_id
),

events as (
    select * from {{ ref('fct_listening_events') }}
    where playlist_id is not null
),

listening as (
    select
        playlist_id,
        count(*) filter (where is_play) as plays,
        count(*) filter (where is_skip) as skips,
        count(distinct user_id) as listeners,
        sum(hours_played) as listening_hours,
        max(event_at) as last_played_at
    from events
    where listening_context = 'playlist' and is_listening_start
    group by playlist_id
),

additions as (
    select
        playlist_id,
        count(*) as tracks_added
    from events
    where event_type = 'playlist_add'
    group by playlist_id
)

select
    playlists.playlist_id,
    playlists.playlist_name,
    playlists.owner_user_id,
    playlists.is_public,
    playlists.created_at,
    coalesce(playlist_sizes.track_count, 0) as track_count,
    coalesce(listening.plays, 0) as plays,
    coalesce(listening.skips, 0) as skips,
    {{ safe_ratio('listening.skips', 'listening.plays + listening.skips') }} as skip_rate,
    coalesce(listening.listeners, 0) as listeners,
    coalesce(listening.listening_hours, 0) as listening_hours,
    coalesce(additions.tracks_added, 0) as tracks_added,
    listening.last_played_at
from playlists
left join playlist_sizes on playlists.playlist_id = playlist_sizes.playlist_id
left join listening on playlists.playlist_id = listening.playlist_id
left join additions on playlists.playlist_id = additions.playlist_id
