-- One row per artist: the latest version and the size of their current catalog.
with latest_versions as (
    select distinct on (artist_id) *
    from {{ ref('stg_artists') }}
    order by artist_id asc, valid_from desc
),

current_tracks as (
    select
        artist_id,
        count(*) as track_count
    from {{ ref('stg_tracks') }}
    where is_current
    group by artist_id
)

select
    latest_versions.artist_id,
    latest_versions.artist_name,
    latest_versions.country_code,
    latest_versions.genre,
    latest_versions.is_current as is_active,
    coalesce(current_tracks.track_count, 0) as track_count,
    latest_versions.created_at,
    latest_versions.updated_at
from latest_versions
left join current_tracks on latest_versions.artist_id = current_tracks.artist_id
