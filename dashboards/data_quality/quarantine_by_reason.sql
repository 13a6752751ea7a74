-- Quarantine rate per landing day (:start to :end) of the :top_n reasons among :reasons with
-- the most quarantined lines there; the other reasons are summed as 'other', so the chart stays
-- readable with many reasons. A line breaking several rules counts under each reason, so the
-- reasons do not add up to the day.
with picked as (
    select
        landing_date,
        reason,
        quarantined_records,
        input_records
    from marts.mart_data_quality
    where landing_date between :start and :end and reason = any(:reasons)
),

ranked as (
    select
        reason,
        row_number() over (order by sum(quarantined_records) desc, reason) as reason_rank
    from picked
    group by reason
),

grouped as (
    select
        picked.landing_date,
        picked.input_records,
        picked.quarantined_records,
        least(ranked.reason_rank, :top_n + 1) as reason_rank,
        case when ranked.reason_rank <= :top_n then picked.reason else 'other' end as reason
    from picked
    inner join ranked on picked.reason = ranked.reason
)

select
    landing_date,
    reason,
    sum(quarantined_records) as quarantined_records,
    sum(quarantined_records)::double precision / nullif(max(input_records), 0)
        as quarantine_rate
from grouped
group by landing_date, reason, reason_rank
order by landing_date, reason_rank
