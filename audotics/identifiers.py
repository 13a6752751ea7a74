"""Identifiers every stage shares: the UUID form of entity ids, and run ids.

A run id names one run of one entry point (`cli`, `run`, ...) so that commit metadata, run rows
and logs can be traced back to it; Airflow runs use Airflow's own run id instead.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID = re.compile(UUID_PATTERN)


def is_uuid(text: str) -> bool:
    return UUID.fullmatch(text) is not None


def new_run_id(source: str) -> str:
    """`<source>__<UTC time>_<random>`, e.g. `cli__20261101T031500_1a2b3c`: sortable by time,
    unique across concurrent runs."""
    return f"{source}__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
