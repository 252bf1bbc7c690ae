"""The state store's own latency, per backend and operation (the issue's "how fast")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from time import perf_counter
from typing import Any

from prometheus_client import Histogram

# A Redis round trip on loopback or a SQLite write is tens to hundreds of microseconds; the top
# buckets catch a store stalling towards its deadline.
STORE_DURATION = Histogram(
    "hookstream_state_store_duration_seconds",
    "Time of one state store operation (failed ones included), by backend and operation.",
    ["backend", "operation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0),
)


@cache
def _child(backend: str, operation: str) -> Any:
    return STORE_DURATION.labels(backend, operation)


@contextmanager
def timed(backend: str, operation: str) -> Iterator[None]:
    started = perf_counter()
    try:
        yield
    finally:
        _child(backend, operation).observe(perf_counter() - started)
