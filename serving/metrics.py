"""Prometheus metrics of the read API: request latency by route and status (its `_count` is the
request count), requests refused by a throttle and stored documents that could not be served,
each by reason. With several workers, `audotics serve` sets PROMETHEUS_MULTIPROC_DIR before
the workers start, each writes its own file there, and /metrics adds them up."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

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
        self.throttled = Counter(
            "audotics_api_throttled_requests",
            "Read API requests refused with a 429, by reason: rate_limit (the API key's rate) "
            "or failed_keys (too many failed API-key attempts from the client's address).",
            ["reason"],
            registry=self.registry,
        )
        self.invalid_documents = Counter(
            "audotics_api_invalid_documents",
            "Stored documents that could not be served (answered with a 500), by reason: "
            "not_json, not_an_object or no_item_list.",
            ["reason"],
            registry=self.registry,
        )

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
