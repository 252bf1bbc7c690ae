"""The machine and software a run measured: numbers mean little without them."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from hookstream_dev.kafka import KAFKA_VERSION

PACKAGES = ("flask", "gunicorn", "gevent", "confluent-kafka", "fastavro", "fastapi", "uvicorn", "uvloop",
            "httptools", "aiokafka", "prometheus-client")  # fmt: skip


def _first_line(cmd: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        lines = (done.stdout + done.stderr).strip().splitlines()
        return lines[0] if lines else ""
    return ""


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def describe(repo: Path) -> dict[str, Any]:
    import confluent_kafka

    versions: dict[str, str] = {"python": platform.python_version(), "kafka": KAFKA_VERSION}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    versions["java"] = _first_line(["java", "-version"])
    versions["wrk"] = _first_line(["wrk", "-v"])
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]),
        "versions": versions,
    }
