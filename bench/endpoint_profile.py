"""Deterministic companion to the py-spy profile: the producer's Flask app called in-process as
a WSGI callable, one request after another, under cProfile; no HTTP server, a real broker.

Each pre-signed request becomes a WSGI environ (built before any clock starts) and goes
through `app(environ, start_response)` as a gunicorn worker thread calls it. Wall time is
mostly the wait for each record's ack; what matters is the CPU this thread spends in each
function around it (cProfile's own overhead inflates every Python call by a similar factor,
so compare shares, not absolute times). The same thread's CPU is also measured once without
the profiler, over a batch of the same size. Run as its own process, so the metrics library
starts in the producer's multiprocess mode exactly as under gunicorn:
    python -m bench.endpoint_profile BOOTSTRAP TOPIC COUNT METRICS_DIR DATA_DIR
Prints one JSON line.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import EnvironBuilder

from bench import payloads
from bench.apps.signature import PATH

# Blocking calls: time spent waiting for the ack (or the librdkafka thread), not computing.
WAITS = ("acquire", "wait", "sleep", "poll")
WARMUP = 100  # connect, learn the partitions, warm up

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


def _is_wait(name: str) -> bool:
    """`<method 'acquire' of '_thread.lock' objects>`, `<built-in method time.sleep>`."""
    return any(f"'{w}'" in name or f".{w}>" in name for w in WAITS)


def _environ(raw: bytes) -> Environ:
    headers = [("Content-Type", "application/json"), ("X-Fastio-Signature", payloads.signature(raw))]
    return EnvironBuilder(path=PATH, method="POST", data=raw, headers=headers).get_environ()


def _sequential(app: WSGIApp, environs: list[Environ]) -> list[int]:
    """Each request through the app; the status each answered."""
    statuses: list[int] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(int(status.split(" ", 1)[0]))

    for environ in environs:
        for _ in app(environ, start_response):
            pass
    return statuses


def _shares(profiler: cProfile.Profile, count: int) -> dict[str, Any]:
    by_function: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    for (file, _line, func), row in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        where = file.split("site-packages/")[-1].split("/python3.11/")[-1].replace(os.getcwd() + "/", "")
        if not _is_wait(func):
            by_function[f"{func} ({where})"] += row[2]  # tottime: time in the function itself
            by_file["C calls" if where == "~" else where] += row[2]
    total = sum(by_function.values()) or 1.0

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"name": name, "pct": round(100 * t / total, 1)} for name, t in counter.most_common(15)]

    return {
        "profiled_cpu_ms_per_request": round(1000 * total / count, 3),
        "top_own_time": shares(by_function),
        "own_time_by_file": shares(by_file),
    }


def profile(bootstrap: str, topic: str, count: int, metrics_dir: str, data_dir: str) -> dict[str, Any]:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before the producer imports prometheus_client
    from hookstream.settings import Settings
    from producer.app import close, create_app

    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "HOOKSTREAM_TOPIC": topic, "HOOKSTREAM_DATA_DIR": data_dir,
           "FASTIO_WEBHOOK_SECRET": payloads.SECRET, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}  # fmt: skip
    app = create_app(Settings.from_env(env))
    environs = [_environ(payloads.body("endpoint-profile", n)) for n in range(WARMUP + 2 * count)]
    warmup, plain, profiled = environs[:WARMUP], environs[WARMUP : WARMUP + count], environs[WARMUP + count :]
    try:
        _sequential(app, warmup)
        cpu_started = time.thread_time()
        statuses = _sequential(app, plain)
        thread_cpu = time.thread_time() - cpu_started
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        statuses += _sequential(app, profiled)
        profiler.disable()
        wall = time.perf_counter() - started
    finally:
        close(app)
    return {
        "requests": count,
        "ok": sum(status == 200 for status in statuses[count:]),
        "ok_unprofiled": sum(status == 200 for status in statuses[:count]),
        "wall_ms_per_request": round(1000 * wall / count, 2),
        "cpu_ms_per_request": round(1000 * thread_cpu / count, 3),
        **_shares(profiler, count),
    }


if __name__ == "__main__":
    bootstrap, topic, count, metrics_dir, data_dir = sys.argv[1:6]
    print(json.dumps(profile(bootstrap, topic, int(count), metrics_dir, data_dir)))
