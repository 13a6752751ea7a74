-- One row per model version (registered, with recommendations, or seen in events): how its
-- recommendations were listened to online, and how much of the catalog and user base it covers.
with registry as (
    select * from {{ ref('stg_model_registry') }}
),

recommendations as (
    select * from {{ ref('stg_recommendations') }}
),

events as (
    select * from {{ ref('fct_listening_events') }}
),

model_versions as (
    select model_version from registry
    union
    select model_version from recommendations
    union
    select model_version from events
    where is_recommended and model_version is not null
),

recommended_listening as (
    select
        events.model_version,
        count(*) filter (where events.is_play) as recommended_plays,
        count(*) filter (where events.is_skip) as recommended_skips,
        count(*) filter (
            where events.ms_played >= {{ var('play_through_min_share') }} * tracks.duration_ms
        ) as played_through_starts,
        count(*) as recommended_starts,
        count(distinct events.user_id) as recommended_listeners,
        min(events.event_date) as first_served_date,
        max(events.event_date) as last_served_date
    from events
    inner join {{ ref('dim_tracks') }} as tracks on events.track_id = tracks.track_id
    where events.is_recommended and events.is_listening_start and events.model_version is not null
    group by events.model_version
),

-- The days a version served recommendations, and all plays of those days: the denominator of
-- the share of plays that came from its recommendations.
serving_days as (
    select distinct
        model_version,
        event_date
    from events
    where is_recommended and model_version is not null
),

daily_plays as (
    select
        event_date,
        count(*) filter (where is_play) as plays
    from events
    group by event_date
),

plays_while_serving as (
    select
        serving_days.model_version,
        sum(daily_plays.plays)::bigint as plays_on_serving_days
    from serving_days
    inner join daily_plays on serving_days.event_date = daily_plays.event_date
    group by serving_days.model_version
),

coverage as (
    select
        model_version,
        count(*) as recommendations,
        count(*) filter (where recommendation_source = 'fallback') as fallback_recommendations,
        count(distinct user_id) as users_with_recommendations,
        count(distinct track_id) as recommended_tracks
    from recommendations
    group by model_version
),

active_tracks as (
    select count(*) as active_tracks
    from {{ ref('dim_tracks') }}
    where is_active
),

active_users as (
    select count(*) as active_users
    from {{ ref('dim_users') }}
    where is_active_account
)

select
    model_versions.model_version,
    registry.model_engine,
    registry.model_status,
    registry.trained_at,
    registry.data_as_of,
    registry.model_version is not null as is_registered,
    recommended_listening.first_served_date,
    recommended_listening.last_served_date,
    coalesce(recommended_listening.recommended_plays, 0) as recommended_plays,
    coalesce(plays_while_serving.plays_on_serving_days, 0) as plays_on_serving_days,
    {{ safe_ratio('recommended_listening.recommended_plays',
                  'plays_while_serving.plays_on_serving_days') }} as recommended_play_share,
    coalesce(recommended_listening.recommended_starts, 0) as recommended_starts,
    coalesce(recommended_listening.recommended_skips, 0) as recommended_skips,
    {{ safe_ratio('recommended_listening.recommended_skips',
                  'recommended_listening.recommended_starts') }} as skip_rate,
    {{ safe_ratio('recommended_listening.played_through_starts',
                  'recommended_listening.recommended_starts') }} as play_through_rate,
    coalesce(recommended_listening.recommended_listeners, 0) as recommended_listeners,
    coalesce(coverage.recommendations, 0) as recommendations,
    coalesce(coverage.fallback_recommendations, 0) as fallback_recommendations,
    coalesce(coverage.users_with_recommendations, 0) as users_with_recommendations,
    coalesce(coverage.recommended_tracks, 0) as recommended_tracks,
    {{ safe_ratio('coverage.recommended_tracks', 'active_tracks.active_tracks') }}
        as catalog_coverage,
    {{ safe_ratio('coverage.users_with_recommendations', 'active_users.active_users') }}
        as user_coverage
from model_versions
cross join active_tracks
cross join active_users
left join registry on model_versions.model_version = registry.model_version
left join recommended_listening
    on model_versions.model_version = recommended_listening.model_version
left join plays_while_serving on model_versions.model_version = plays_while_serving.model_version
left join coverage on model_versions.model_version = coverage.model_version
