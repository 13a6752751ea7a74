-- The most played tracks of one day (:day), best first.
select
    daily_rank,
    title,
    artist_name,
    genre,
    plays,
    listeners,
    skip_rate
from marts.mart_top_tracks_daily
where event_date = :day and daily_rank <= :top_n
order by daily_rank
