"""The feature store: entities, feature views and feature services declared as code
(`definitions`, vocabulary in `model`), an offline store in Delta read as Arrow snapshots or
joined point-in-time with Spark (`offline`), and an online store in Redis (`online`). It never
imports spark_jobs (the jobs that compute the features sit above it). See README.md."""
