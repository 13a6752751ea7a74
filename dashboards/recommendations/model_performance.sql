-- Online performance of the model versions trained or serving between :start and :end, oldest
-- model first. A version the registry does not know (named by events or stored lists only) has
-- no status: it is labelled instead of showing an empty one.
select
    model_version,
    case
        when is_registered then model_status
        when recommendations = 0 then 'seen only in events'
        else 'not in the registry'
    end as model_status,
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
where
    (first_served_date <= :end and last_served_date >= :start)
    or trained_at::date between :start and :end
order by trained_at nulls first, model_version
