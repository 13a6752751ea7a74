-- One row per track: the latest version with its artist's name.
with latest_versions as (
    select distinct on (track_id) *
    from {{ ref('stg_tracks') }}
    order by track_id asc, valid_from desc
),

artists as (
    select * from {{ ref('dim_artists') }}
)

select
    latest_versions.track_id,
    latest_versions.title,
    latest_versions.artist_id,
    artists.artist_name,
    latest_versions.album,
    latest_versions.genre,
    latest_versions.duration_ms,
    latest_versions.release_date,
    latest_versions.danceability,
    latest_versions.energy,
    latest_versions.valence,
    latest_versions.tempo,
    latest_versions.acousticness,
    latest_versions.instrumentalness,
    latest_versions.loudness_db,
    latest_versions.is_current as is_active,
    latest_versions.created_at,
    latest_versions.updated_at
from latest_versions
left join artists on latest_versions.artist_id = artists.artist_id
