-- Online performance of each model version's recommendations, oldest model first.
select
    model_version,
    model_status,
    model_engine,
    trained_at,
    first_served_date,
    last_served_date,
    recommended_plays,
    recommended_play_share,
    play_through_rate,
    skip_rate,
    recommendations,
    catalog_coverage,
    user_coverage
from marts.mart_recommendation_performance
order by trained_at nulls first, model_version
