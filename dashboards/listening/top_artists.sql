-- The most played artists of one day (:day): plays of all their tracks, best first.
-- Ties in plays are broken by listeners, then name, so the order is stable.
select
    tracks.artist_name,
    count(*) as plays,
    count(distinct events.user_id) as listeners,
    count(distinct events.track_id) as tracks_played
from marts.fct_listening_events as events
inner join marts.dim_tracks as tracks on events.track_id = tracks.track_id
where events.event_date = :day and events.is_play
group by tracks.artist_id, tracks.artist_name
order by plays desc, listeners desc, tracks.artist_name
limit :top_n
