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
# Measured against gevent on 2 shared cores (wrk, 64 keep-alive connections): gevent spent
# 15-20% less CPU per request, but its throughput was not consistently higher, and gthread
# needs no extra dependency. `--worker-class gevent` works too (the publisher then polls
# cooperatively); the benchmark decides.
worker_class = "gthread"
workers = os.cpu_count() or 2
threads = 32
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


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    close = getattr(getattr(worker, "wsgi", None), "close", None)
    if close is not None:
        close()


def on_exit(server: Any) -> None:
    path = getattr(server, _METRICS_DIR_ATTR, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
