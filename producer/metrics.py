"""The producer's Prometheus metrics (names are a contract with dashboards and alerts).

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (set by
`producer.gunicorn_conf` before any worker starts) and `/metrics` merges them, so a scrape
sees the whole server whichever worker answers it. Without that directory (tests, a single
process) the default registry is served.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from producer.errors import REASONS
from producer.providers import PROVIDERS

# Request latency is dominated by the broker's ack: milliseconds, with a tail up to the deadline.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)

REQUESTS = Counter(
    "hookstream_http_requests_total",
    "Webhook requests answered, by provider and HTTP status.",
    ["provider", "status"],
)
REJECTIONS = Counter(
    "hookstream_http_rejections_total",
    "Webhook requests refused, by the JSON error code.",
    ["provider", "reason"],
)
REQUEST_DURATION = Histogram(
    "hookstream_http_request_duration_seconds",
    "Time from a webhook request's start to its answer.",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
DELIVERY_DURATION = Histogram(
    "hookstream_kafka_delivery_duration_seconds",
    "Time from produce() to the broker's acknowledgement.",
    buckets=_LATENCY_BUCKETS,
)
DELIVERY_FAILURES = Counter(
    "hookstream_kafka_delivery_failures_total", "Records Kafka did not acknowledge, by reason.", ["reason"]
)
IN_FLIGHT = Gauge(
    "hookstream_http_requests_in_flight", "Webhook requests being handled now.", multiprocess_mode="livesum"
)
DUPLICATES = Counter(
    "hookstream_duplicates_total", "Repeated event_ids answered without producing again.", ["provider"]
)
DEDUPE_STORE_ERRORS = Counter(
    "hookstream_dedupe_store_errors_total",
    "Dedupe state store calls that failed or timed out (the webhook was produced without dedupe).",
)


# Statuses a webhook can be answered with (see producer.openapi): series created at zero.
STATUSES = (200, 400, 401, 404, 405, 413, 415, 422, 500, 503)
DELIVERY_FAILURE_REASONS = ("timeout", "error")


def create_known_series() -> None:
    """Every series whose label values are known in advance, at zero, so a dashboard shows 0
    (not "No data") before the first failure. Per worker: each writes its own files in
    multiprocess mode, where a child's file entry is made when the child is."""
    for provider in (*PROVIDERS, "unknown"):
        for status in STATUSES:
            _requests(provider, status)
        for reason in REASONS:
            REJECTIONS.labels(provider, reason)
        _durations(provider)
        DUPLICATES.labels(provider)
    for reason in DELIVERY_FAILURE_REASONS:
        DELIVERY_FAILURES.labels(reason)


@cache
def _requests(provider: str, status: int) -> Any:
    return REQUESTS.labels(provider, str(status))


@cache
def _durations(provider: str) -> Any:
    return REQUEST_DURATION.labels(provider)


def observe_request(provider: str, status: int, seconds: float) -> None:
    """Count one answered webhook and its latency (label children cached: this runs per request)."""
    _requests(provider, status).inc()
    _durations(provider).observe(seconds)


def render(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """The exposition text and its content type, merged across workers when there are several."""
    if multiprocess_dir is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    return generate_latest(registry), CONTENT_TYPE_LATEST
