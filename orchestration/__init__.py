"""The composition root: wires the stages into the `audotics` CLI, the nightly run (from one
registry of stages, which the Airflow DAGs read too) and GDPR erasure across every store."""
