-- The most played tracks of each day: one row per day and rank (top N, N = var top_tracks_per_day).
-- Ties in plays are broken by listeners, then track_id, so ranks are stable across rebuilds.
with track_days as (
    select
        event_date,
        track_id,
        count(*) filter (where is_play) as plays,
        count(*) filter (where is_skip) as skips,
        count(distinct user_id) filter (where is_play) as listeners,
        sum(hours_played) as listening_hours
    from {{ ref('fct_listening_events') }}
    where is_listening_start
    group by event_date, track_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by event_date order by plays desc, listeners desc, track_id asc
        ) as daily_rank
    from track_days
    where plays > 0
)

select
    ranked.event_date,
    ranked.daily_rank,
    ranked.track_id,
    tracks.title,
    tracks.artist_id,
    tracks.artist_name,
    tracks.genre,
    ranked.plays,
    ranked.listeners,
    ranked.skips,
    {{ safe_ratio('ranked.skips', 'ranked.plays + ranked.skips') }} as skip_rate,
    ranked.listening_hours
from ranked
inner join {{ ref('dim_tracks') }} as tracks on ranked.track_id = tracks.track_id
where ranked.daily_rank <= {{ var('top_tracks_per_day') }}
