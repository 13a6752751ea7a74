-- Plays per genre and day of the days :start to :end, and the genre's share of the day's plays.
select
    event_date,
    genre,
    plays,
    play_share
from marts.mart_genre_trends
where event_date between :start and :end
order by event_date, genre
