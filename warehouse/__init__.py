"""The warehouse: lake tables copied into PostgreSQL schema `raw`, modelled by the dbt project in
`dbt/` beside this package.

- `load`: the incremental, idempotent lake-to-`raw` load (`load_warehouse`, `SOURCES`);
- `postgres_copy`: Arrow types to PostgreSQL types, and bulk COPY of Arrow batches;
- `dbt`: running the dbt project against the warehouse (`run_dbt`);
- `build`: the nightly stage, the load then `dbt build` (`build_warehouse`);
- `cli`: `audotics warehouse ...` and `audotics dbt-profile`;
- `erasure`: a user's rows out of the warehouse (GDPR).
"""
