-- One row per arm of each experiment, from the arms JSON of its definition; the first arm is
-- the control.
with experiments as (
    select * from {{ ref('stg_experiments') }}
)

select
    experiments.experiment_id,
    arm.value ->> 'name' as arm,
    arm.value ->> 'model_version' as model_version,
    (arm.value ->> 'share')::double precision as planned_share,
    arm.position = 1 as is_control
from experiments
cross join lateral jsonb_array_elements(experiments.arms) with ordinality as arm (value, position)
