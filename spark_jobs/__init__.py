"""Spark applications and their transforms (pure functions of DataFrames)."""
