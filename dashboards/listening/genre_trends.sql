-- Plays per genre and day, and the genre's share of the day's plays (every genre, every day).
select
    event_date,
    genre,
    plays,
    play_share
from marts.mart_genre_trends
order by event_date, genre
