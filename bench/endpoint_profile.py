"""Deterministic companion to the py-spy profile: the producer's WSGI app called in-process,
one request after another, under cProfile; no HTTP server, a real broker.

Wall time is mostly the wait for each record's ack; what matters is the CPU the request
thread spends in each function around it (cProfile's own overhead inflates every Python call
by a similar factor, so compare shares, not absolute times). Run as its own process, so the
metrics library starts in the producer's multiprocess mode exactly as under gunicorn:
    python -m bench.endpoint_profile BOOTSTRAP TOPIC COUNT METRICS_DIR DATA_DIR
Prints one JSON line.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections import Counter
from typing import Any

from bench import payloads

WAITS = ("acquire", "wait", "sleep", "poll")  # blocking calls: time spent waiting, not computing


def _is_wait(name: str) -> bool:
    """`<method 'acquire' of '_thread.lock' objects> (~)`, `<built-in method time.sleep> (~)`."""
    return any(f"'{w}'" in name or f".{w}>" in name for w in WAITS)


def _environ(raw: bytes, signature: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/fastio", "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": "application/json", "HTTP_X_FASTIO_SIGNATURE": signature,
        "wsgi.input": io.BytesIO(raw),
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
    }  # fmt: skip


def profile(bootstrap: str, topic: str, count: int, metrics_dir: str, data_dir: str) -> dict[str, Any]:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before the producer imports prometheus_client
    from hookstream.settings import Settings
    from producer.app import create_app

    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "HOOKSTREAM_TOPIC": topic, "HOOKSTREAM_DATA_DIR": data_dir,
           "FASTIO_WEBHOOK_SECRET": payloads.SECRET, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}  # fmt: skip
    app = create_app(Settings.from_env(env))
    bodies = [payloads.body("endpoint-profile", n) for n in range(count + 100)]
    requests = [(raw, payloads.signature(raw)) for raw in bodies]
    statuses: list[str] = []

    def call(raw: bytes, signature: str) -> None:
        b"".join(app(_environ(raw, signature), lambda status, _headers, _exc=None: statuses.append(status)))

    for raw, signature in requests[:100]:  # connect, learn the partitions, warm up
        call(raw, signature)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for raw, signature in requests[100:]:
        call(raw, signature)
    profiler.disable()
    wall = time.perf_counter() - started
    app.close()
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
        "requests": count,
        "ok": sum(s.startswith("200") for s in statuses),
        "wall_ms_per_request": round(1000 * wall / count, 2),
        "profiled_cpu_ms_per_request": round(1000 * total / count, 3),
        "top_own_time": shares(by_function),
        "own_time_by_file": shares(by_file),
    }


if __name__ == "__main__":
    bootstrap, topic, count, metrics_dir, data_dir = sys.argv[1:6]
    print(json.dumps(profile(bootstrap, topic, int(count), metrics_dir, data_dir)))
