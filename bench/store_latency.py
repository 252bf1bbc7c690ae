"""The idempotency store's own latency, redis-benchmark style: `add` (SET NX PX, the producer's
claim) one call after another from one client, against each backend of the run.

What a webhook pays the store on its path, without HTTP or Kafka around it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.loadgen import percentile
from hookstream.settings import Settings
from hookstream.state import open_store, state_key

WARMUP = 200


@dataclass(frozen=True)
class StoreLatency:
    store: str  # "redis" or "sqlite"
    calls: int
    p50_ms: float
    p99_ms: float
    calls_per_s: float


def measure(name: str, settings: Settings, calls: int) -> StoreLatency:
    store = open_store(settings)
    keys = [state_key("bench-store", "dedupe", f"{name}-{n}") for n in range(WARMUP + calls)]
    try:
        for key in keys[:WARMUP]:
            store.add(key, 60.0)
        took: list[float] = []
        started = time.perf_counter()
        for key in keys[WARMUP:]:
            before = time.perf_counter()
            store.add(key, 60.0)
            took.append(time.perf_counter() - before)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    ordered = sorted(1000 * t for t in took)
    return StoreLatency(
        store=name,
        calls=calls,
        p50_ms=round(percentile(ordered, 0.50), 3),
        p99_ms=round(percentile(ordered, 0.99), 3),
        calls_per_s=round(calls / elapsed, 1),
    )


def both(data_dir: Path, redis_url: str | None, calls: int) -> list[StoreLatency]:
    """The embedded SQLite store in `data_dir`, and Redis at `redis_url` when there is one."""
    base = Settings(data_dir=data_dir)
    found = [measure("sqlite", base, calls)]
    if redis_url:
        found.append(measure("redis", replace(base, redis_url=redis_url), calls))
    return found
