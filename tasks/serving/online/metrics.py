"""The server's Prometheus metrics, in a registry of its own (one per app: tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: sub-millisecond to the 100 ms budget and beyond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loopline_api_requests",
            "Requests answered, by endpoint and status",
            ["path", "status"],
            registry=r,
        )
        self.errors = Counter(
            "loopline_api_errors", "Requests refused or failed, by kind", ["kind"], registry=r
        )
        self.latency = Histogram(
            "loopline_api_request_seconds",
            "Latency of /v1/predict",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "loopline_api_batch_rows",
            "Rows per scored batch",
            ["role"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.rows = Counter(
            "loopline_api_rows",
            "Rows scored, by role and model version",
            ["role", "version"],
            registry=r,
        )
        self.refused_rows = Counter(
            "loopline_api_refused_rows", "Rows refused (422) with the reason", registry=r
        )
        self.queue_depth = Gauge(
            "loopline_api_queue_depth", "Requests waiting to be scored", registry=r
        )
        self.model_version = Gauge(
            "loopline_api_model_version",
            "The version served (and the challenger)",
            ["role"],
            registry=r,
        )
        self.load_failures = Counter(
            "loopline_api_load_failures", "Versions that failed to load", ["alias"], registry=r
        )
        self.shadow_dropped = Counter(
            "loopline_api_shadow_dropped_rows",
            "Shadow rows dropped: the shadow queue was full",
            registry=r,
        )

    def text(self) -> bytes:
        return generate_latest(self.registry)
