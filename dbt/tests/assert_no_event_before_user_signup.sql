-- Nobody listens before signing up. Ingestion quarantines such events
-- (event_before_user_signup), so a row here means that rule or the catalog's history broke.
select
    listened.event_id,
    listened.user_id,
    listened.event_at,
    signups.signed_up_at
from {{ ref('fct_listening_events') }} as listened
inner join {{ ref('dim_users') }} as signups on listened.user_id = signups.user_id
where listened.event_at < signups.signed_up_at
