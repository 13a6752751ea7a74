"""The feature store: features declared as code (`definitions`), an offline store in Delta with
point-in-time joins (`offline`, Spark) and an online store in Redis (`online`). See README.md."""
