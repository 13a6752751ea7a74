-- The playlists most played from (:top_n), with their owner's user name: playlist names repeat
-- across users.
select
    playlists.playlist_name || ' (' || coalesce(users.username, 'unknown owner') || ')'
        as playlist,
    playlists.plays,
    playlists.listeners,
    playlists.skip_rate,
    playlists.tracks_added,
    playlists.track_count
from marts.mart_playlist_engagement as playlists
left join marts.dim_users as users on playlists.owner_user_id = users.user_id
where playlists.plays > 0
order by playlists.plays desc, playlists.listeners desc, playlists.playlist_id
limit :top_n
