"""Prometheus metrics of the read API: request latency by route and status (its `_count` is the
request count). With several workers, `audotics serve` sets PROMETHEUS_MULTIPROC_DIR before
the workers start, each writes its own file there, and /metrics adds them up."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess

# Sub-millisecond buckets: the hot path answers in well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "unmatched"  # the route label of unknown paths: keeps label values few


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "audotics_api_request_duration_seconds",
            "Latency of read API requests by route template and HTTP status; "
            "_count is the number of requests.",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Histogram] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self._children.get((route, status))
        if child is None:  # labels() takes a lock and builds a key: do it once per pair
            child = self._children[route, status] = self.latency.labels(route, str(status))
        child.observe(seconds)

    def exposition(self) -> bytes:
        """The text format; across all workers when they share a multiprocess directory."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
