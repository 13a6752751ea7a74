-- One row per day and genre (every genre of the vocabulary, zero when unplayed): plays, their
-- share of the day, and 7-day rolling sums that smooth weekday effects for trend lines.
with days as (
    select date_day from {{ ref('int_date_spine') }}
),

genres as (
    {% for genre in var('genres') -%}
        select '{{ genre }}'::text as genre
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

genre_days as (
    select
        events.event_date,
        tracks.genre,
        count(*) filter (where events.is_play) as plays,
        count(distinct events.user_id) filter (where events.is_play) as listeners,
        sum(events.hours_played) as listening_hours
    from {{ ref('fct_listening_events') }} as events
    inner join {{ ref('dim_tracks') }} as tracks on events.track_id = tracks.track_id
    where events.is_listening_start
    group by events.event_date, tracks.genre
),

grid as (
    select
        days.date_day,
        genres.genre,
        coalesce(genre_days.plays, 0) as plays,
        coalesce(genre_days.listeners, 0) as listeners,
        coalesce(genre_days.listening_hours, 0) as listening_hours
    from days
    cross join genres
    left join genre_days
        on days.date_day = genre_days.event_date and genres.genre = genre_days.genre
),

rolling as (
    select
        *,
        sum(plays) over (partition by date_day) as day_plays,
        (sum(plays) over (
            partition by genre order by date_day rows between 6 preceding and current row
        ))::bigint as plays_7d
    from grid
)

select
    date_day as event_date,
    genre,
    plays,
    listeners,
    listening_hours,
    {{ safe_ratio('plays', 'day_plays') }} as play_share,
    plays_7d,
    {{ safe_ratio('plays_7d', 'sum(plays_7d) over (partition by date_day)') }} as play_share_7d
from rolling
