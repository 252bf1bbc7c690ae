"""gunicorn settings and hooks for the producer.

`hookstream producer` loads this module; plain gunicorn works too:
    gunicorn -c python:producer.gunicorn_conf 'producer.app:app_from_env()'

Workers build the app after the fork (no preload), so no Kafka client ever crosses a fork.
Metrics: every worker writes to PROMETHEUS_MULTIPROC_DIR, which must be set before any
worker imports prometheus_client (the library fixes its mode at import); so this module
imports it only inside hooks that run after `on_starting`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hookstream.settings import Settings

wsgi_app = "producer.app:app_from_env()"
bind = ["0.0.0.0:8000"]
# gevent, one worker per CPU, chosen by measurement against gthread (32 threads) on a quiet box
# with a warmed broker, 3 interleaved rounds (docs/benchmarks/producer-worker-class.md): 1,230
# against 750 acked req/s, 1.22 against 1.55 ms of CPU per webhook. A webhook mostly waits for
# Kafka's ack: under gevent each waits as a greenlet on an event that librdkafka's thread sets
# through the hub's thread-safe watcher (producer.handoff), with no hand-off to a pool thread and
# no GIL passed among 32 threads. Nothing on the request path blocks the hub for long: dedupe
# writes go through one writer per worker in batches (producer.group_commit); Redis, registry
# and Kafka metadata calls cooperate or run in gevent's thread pool. One exception, on one host
# only: the embedded SQLite store's busy wait sleeps in C, so while another process holds its
# write lock (a consumer's batch: milliseconds) the worker's hub waits too, at most the store's
# 0.5 s timeout. Deployments with several producers use Redis, which cooperates.
# gunicorn's gevent worker, whose graceful stop also ends idle keep-alive connections, so that
# `worker_exit` runs before the master's SIGKILL (producer.worker). `--worker-class gevent` means it.
GEVENT_WORKER = "producer.worker.ProducerWorker"
worker_class = GEVENT_WORKER
workers = os.cpu_count() or 2
# Requests in flight per worker, each a greenlet holding its connection until its ack (at most
# the 2 s deadline): gunicorn's default, far above what one worker's CPU answers per 2 s.
worker_connections = 1000
threads = 32  # only for `--worker-class gthread`, the measured runner-up
keepalive = 75  # longer than typical sender/load-balancer idle timeouts
timeout = 30
graceful_timeout = 15
errorlog = "-"
loglevel = "info"
accesslog = None  # the app logs one JSON line per webhook itself
# gunicorn's control socket has one default path per user: two servers on a host would clash.
control_socket_disable = True

_METRICS_DIR_ATTR = "hookstream_metrics_tmpdir"


def on_starting(server: Any) -> None:
    """Give the workers an empty metrics directory (old files would be merged in)."""
    configured = Settings.from_env().metrics_multiprocess_dir
    path = configured or Path(tempfile.mkdtemp(prefix="hookstream-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    setattr(server, _METRICS_DIR_ATTR, None if configured else path)


def post_worker_init(worker: Any) -> None:
    """The worker's Kafka client starts connecting before its first request."""
    from producer.app import connect

    app = _producer_app(worker)
    if app is not None:
        connect(app)


def worker_exit(server: Any, worker: Any) -> None:
    """A graceful stop: deliver what is still queued before the worker ends."""
    from producer.app import close

    app = _producer_app(worker)
    if app is not None:
        close(app)


def _producer_app(worker: Any) -> Any:
    """The worker's app; None for gunicorn's stand-in app of a worker that failed to load it."""
    from flask import Flask

    app = getattr(worker, "wsgi", None)
    return app if isinstance(app, Flask) else None


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    path = getattr(server, _METRICS_DIR_ATTR, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
