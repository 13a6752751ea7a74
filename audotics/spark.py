"""The one way every job gets its SparkSession: master, memory and Delta mode from the settings.

Under spark-submit the submitted master and confs win (getOrCreate keeps them); run directly, the
session is built from the settings, `local[*]` by default.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from audotics import logs
from audotics.settings import Settings


def spark_session(settings: Settings, app_name: str) -> SparkSession:
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
    )
    # spark-submit starts the JVM first and hands its gateway port to Python: its master stays.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(settings.spark_master).config(
            "spark.driver.memory", settings.spark_driver_memory
        )
    if settings.spark_delta_native:
        builder = builder.config(
            "spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension"
        ).config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
    with logs.child_output_to_log():  # the JVM's console chatter, for its whole life
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


@contextmanager
def spark_job(settings: Settings, app_name: str) -> Iterator[SparkSession]:
    """A session for one job: stopped at the end only if this job started it, so a job run
    inside a process that already has a session (a test, a notebook) leaves that one alive."""
    already_running = SparkSession.getActiveSession() is not None
    spark = spark_session(settings, app_name)
    try:
        yield spark
    finally:
        if not already_running:
            spark.stop()
