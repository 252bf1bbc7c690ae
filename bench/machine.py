"""The machine and software a run measured: numbers mean little without them."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from bench.loadgen import VEGETA_MODULE
from bench.results import Machine
from hookstream_dev.kafka import KAFKA_VERSION

PACKAGES = ("flask", "gunicorn", "gevent", "confluent-kafka", "fastavro", "redis", "fastapi", "uvicorn",
            "aiokafka", "prometheus-client")  # fmt: skip


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


def describe(repo: Path) -> Machine:
    import confluent_kafka

    versions: dict[str, str] = {"python": platform.python_version(), "kafka": KAFKA_VERSION}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    versions["java"] = _first_line(["java", "-version"])
    versions["vegeta"] = VEGETA_MODULE.rpartition("@")[2]  # `make bench` installs this version
    return Machine(
        cores=psutil.cpu_count() or 1,
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        cpu_model=_cpu_model(),
        kernel=platform.release(),
        load_average_at_start=tuple(round(x, 2) for x in psutil.getloadavg()),
        git_commit=_first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]),
        versions=versions,
    )
