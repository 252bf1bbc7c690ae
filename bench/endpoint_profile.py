"""Deterministic companion to the py-spy profile: the producer's ASGI app called in-process on
a uvloop event loop (as a uvicorn worker runs it), one request after another, under cProfile;
no HTTP server, a real broker.

Each pre-signed request becomes an ASGI scope with a `receive` that hands over the whole body
and a `send` that keeps the answer. Wall time is mostly the wait for each record's ack; what
matters is the CPU the event loop's thread spends in each function around it (cProfile's own
overhead inflates every Python call by a similar factor, so compare shares, not absolute
times). The same thread's CPU is also measured once without the profiler, over a batch of the
same size. Run as its own process, so the metrics library starts in the producer's
multiprocess mode exactly as under gunicorn:
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
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from bench import payloads
from bench.apps.signature import PATH

# Blocking calls: time spent waiting, not computing. uvloop waits for I/O inside its C
# `run_until_complete`, so that call's own time is the idle wait (plus uvloop's bookkeeping,
# which is the server's cost, not the app's).
WAITS = ("acquire", "wait", "sleep", "poll", "run_until_complete")
WARMUP = 100  # connect, learn the partitions, warm up

Request = tuple[bytes, str]  # raw body, signature
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _is_wait(name: str) -> bool:
    """`<method 'acquire' of '_thread.lock' objects>`, `<built-in method time.sleep>`."""
    return any(f"'{w}'" in name or f".{w}>" in name for w in WAITS)


def _scope(raw: bytes, signature: str) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"x-fastio-signature", signature.encode()),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def _call(app: ASGIApp, raw: bytes, signature: str) -> int:
    """One request through the app; returns the status it answered."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(raw, signature), receive, send)
    return status


async def _sequential(app: ASGIApp, requests: list[Request]) -> list[int]:
    return [await _call(app, raw, signature) for raw, signature in requests]


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
    from producer.app import create_app

    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "HOOKSTREAM_TOPIC": topic, "HOOKSTREAM_DATA_DIR": data_dir,
           "FASTIO_WEBHOOK_SECRET": payloads.SECRET, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}  # fmt: skip
    app = create_app(Settings.from_env(env))
    bodies = [payloads.body("endpoint-profile", n) for n in range(WARMUP + 2 * count)]
    requests = [(raw, payloads.signature(raw)) for raw in bodies]  # signed before any clock starts
    warmup, plain, profiled = requests[:WARMUP], requests[WARMUP : WARMUP + count], requests[WARMUP + count :]
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(_sequential(app, warmup))
        cpu_started = time.thread_time()
        statuses = loop.run_until_complete(_sequential(app, plain))
        loop_cpu = time.thread_time() - cpu_started
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        statuses += loop.run_until_complete(_sequential(app, profiled))
        profiler.disable()
        wall = time.perf_counter() - started
    finally:
        app.close()
        loop.close()
    return {
        "requests": count,
        "ok": sum(status == 200 for status in statuses[count:]),
        "ok_unprofiled": sum(status == 200 for status in statuses[:count]),
        "wall_ms_per_request": round(1000 * wall / count, 2),
        "loop_cpu_ms_per_request": round(1000 * loop_cpu / count, 3),
        **_shares(profiler, count),
    }


if __name__ == "__main__":
    bootstrap, topic, count, metrics_dir, data_dir = sys.argv[1:6]
    print(json.dumps(profile(bootstrap, topic, int(count), metrics_dir, data_dir)))
