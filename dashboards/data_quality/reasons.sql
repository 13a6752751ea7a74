-- The quarantine reasons of the landing days :start to :end, most quarantined lines first.
select reason
from marts.mart_data_quality
where landing_date between :start and :end
group by reason
order by sum(quarantined_records) desc, reason
