"""Audotics core, shared by every stage: settings, errors, PostgreSQL and Redis clients, the
Spark session, embedded services, vocabularies, identifiers and the lake with its table catalog.

It imports no other project package (checked by `lint-imports`)."""

__version__ = "0.1.0"
