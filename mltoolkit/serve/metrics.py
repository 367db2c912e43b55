"""``GET /metrics``: request counts by status, latency and batch sizes, in Prometheus text format.

Each app has its own registry (two servers in one process, as in the tests, do not share counters).
With ``--workers N`` a scrape reaches one worker, so the workers count in the Prometheus client's
multiprocess mode: the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before it starts them, each worker's
values live in files there, and any worker's ``/metrics`` sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mltk_requests", "HTTP requests by method, route and status.", ["method", "path", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "mltk_request_seconds", "Time from request to response, by route.", ["path"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch = Histogram(
            "mltk_batch_inputs", "Inputs per predict call (micro-batches).", buckets=BATCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests.labels(method, path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def render(self) -> bytes:
        if os.environ.get(MULTIPROCESS_ENV):  # --workers N: every worker's counts, summed
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
