"""Airflow Assets for lake tables: the links between DAGs (data-aware scheduling).

URIs are logical (`audotics://lake/<layer>/<table>`), not storage paths, so DAG files parse the
same whether the lake is a local folder or s3://. Import only from DAG files.
"""

from __future__ import annotations

from airflow.sdk import Asset


def lake_asset(layer: str, table: str) -> Asset:
    return Asset(name=f"{layer}/{table}", uri=f"audotics://lake/{layer}/{table}", group="lake")
