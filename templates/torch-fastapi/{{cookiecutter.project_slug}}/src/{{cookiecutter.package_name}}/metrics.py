"""Prometheus metrics of one service instance.

Each app gets its own registry, so two apps in one process (as in the tests) never
share counters, and ``/metrics`` shows only what this service measured.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)

# The *_created series double the output and no dashboard uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    """The service's metrics, registered in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request start to response start, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being handled right now.", registry=r
        )
        self.batch_size = Histogram(
            "inference_batch_size",
            "Items run together in one forward pass.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "inference_duration_seconds",
            "Duration of one forward pass.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_errors = Counter(
            "inference_errors_total", "Forward passes that raised.", registry=r
        )
        self.items = Counter("prediction_items_total", "Items predicted.", registry=r)
        self.batch_queue_rejections = Counter(
            "batch_queue_rejections_total",
            "Requests refused with 503 because the batch queue was full.",
            registry=r,
        )
        self.model_ready = Gauge("model_ready", "1 when the model is loaded and warm.", registry=r)
        self.model_info = Info("model", "The loaded model.", registry=r)
        self.db_up = Gauge("db_up", "1 when the last database write succeeded.", registry=r)
        self.db_rows_written = Counter(
            "db_rows_written_total", "Prediction log rows written.", registry=r
        )
        self.db_write_failures = Counter(
            "db_write_failures_total",
            "Failed attempts to write a batch of prediction log rows.",
            registry=r,
        )
        self.db_dropped = Counter(
            "db_queue_dropped_total",
            "Prediction log records dropped (queue full, or not written at shutdown).",
            registry=r,
        )
        self.db_queue_depth = Gauge(
            "db_queue_depth", "Prediction log records waiting to be written.", registry=r
        )

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
