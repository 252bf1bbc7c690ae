"""The pipeline as real processes: the producer under gunicorn and consumer group members.

Each process runs in its own session, so a SIGKILL reaches it and its children (gunicorn's
workers) by process-group id, never by name. Every line a process writes goes to its own
log file, which scenario 6 scans. Settings reach the processes only through the environment,
the way an operator would give them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from hookstream_dev.process import free_port_block
from tests.faults.harness.webhooks import SigningKeys

HOOKSTREAM = str(Path(sys.executable).with_name("hookstream"))
# The developer's own settings must not leak into a scenario's processes.
_FOREIGN_PREFIXES = ("HOOKSTREAM_", "KAFKA_", "FASTIO_", "GITHUB_", "STRIPE_", "STANDARD_", "PROMETHEUS_")


class ProcessFailed(RuntimeError):
    pass


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, timeout_s: float = 60.0, wait: bool = True) -> Proc:
        """Launch the process; with `wait`, return once it answers on `ready_url`."""
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start #{self.starts}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise ProcessFailed(f"{self.name} exited with {self.returncode} at start-up:\n{self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.ready_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise ProcessFailed(
            f"{self.name} did not answer {self.ready_url} within {timeout_s:.0f}s:\n{self.tail()}"
        )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as a crash or the OOM killer would."""
        self._signal_group(signal.SIGKILL)
        self._wait(10.0)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not left within `timeout_s`; the exit code."""
        if not self.alive:
            return self.returncode
        self._signal_group(signal.SIGTERM)
        if not self._wait(timeout_s):
            self._signal_group(signal.SIGKILL)
            self._wait(10.0)
        return self.returncode

    def _signal_group(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)  # the group id is our child's pid (own session)

    def _wait(self, timeout_s: float) -> bool:
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    def children(self) -> set[int]:
        """Pids of the process's direct children (gunicorn's workers)."""
        if not self.alive or self.popen is None:
            return set()
        found: set[int] = set()
        for task in Path(f"/proc/{self.popen.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in task.read_text().split())
        return found

    @property
    def base_url(self) -> str:
        return self.ready_url.rsplit("/", 1)[0]

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample from the process's Prometheus endpoint (consumers serve it on ready_url)."""
        try:
            text = requests.get(self.ready_url, timeout=5).text
        except requests.RequestException:
            return None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return None

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Pipeline:
    """One scenario's processes, with their own topics, data dir and log folder."""

    workdir: Path
    bootstrap: str
    topic: str
    dlq_topic: str
    keys: SigningKeys
    notify_url: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def env(self, **more: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
        settings = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "HOOKSTREAM_TOPIC": self.topic,
            "HOOKSTREAM_DLQ_TOPIC": self.dlq_topic,
            "HOOKSTREAM_DATA_DIR": str(self.data_dir),
            # A quiet topic's events reach the archive within seconds, not a minute.
            "HOOKSTREAM_ARCHIVE_MAX_AGE_S": "2",
            **self.keys.env(),
        }
        if self.notify_url:
            settings["HOOKSTREAM_NOTIFY_URL"] = self.notify_url
        return {**base, **settings, **self.extra_env, **more}

    def _new(self, name: str, argv: list[str], ready_url: str, env: dict[str, str]) -> Proc:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        proc = Proc(name, argv, env, self.log_dir / f"{name}.log", ready_url)
        self.procs.append(proc)
        return proc

    def producer(self, workers: int = 2, **env: str) -> Proc:
        port = free_port_block(1)
        argv = [HOOKSTREAM, "producer", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        return self._new("producer", argv, f"http://127.0.0.1:{port}/healthz", self.env(**env)).start()

    def member(self, group: str, wait: bool = True, **env: str) -> Proc:
        port = free_port_block(1)
        index = sum(1 for p in self.procs if p.name.startswith(f"{group}-")) + 1
        proc_env = self.env(HOOKSTREAM_METRICS_PORT=str(port), **env)
        proc = self._new(
            f"{group}-{index}", [HOOKSTREAM, "consume", group], f"http://127.0.0.1:{port}/metrics", proc_env
        )
        return proc.start(wait=wait)

    def start_groups(self, groups: tuple[str, ...], per_group: int = 1) -> list[Proc]:
        """`per_group` members of each group, started side by side (they take seconds each)."""
        started = [self.member(group, wait=False) for group in groups for _ in range(per_group)]
        for proc in started:
            proc.wait_ready()
        return started

    def cli(self, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run `hookstream <args>` with this pipeline's settings; its output is captured (and
        kept with the logs, for scenario 6)."""
        argv = [HOOKSTREAM, *args]
        result = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=timeout_s)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "cli.log").open("a") as out:
            out.write(f"--- {' '.join(argv)} -> {result.returncode}\n{result.stdout}{result.stderr}")
        return result

    def members(self, group: str) -> list[Proc]:
        return [p for p in self.procs if p.name.startswith(f"{group}-")]

    def stop(self) -> None:
        # Consumers first, so they commit what they processed; the producer last.
        for proc in sorted(self.procs, key=lambda p: p.name == "producer"):
            proc.stop()

    def log_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log"))

    def group_id(self, group: str) -> str:
        return self.extra_env.get("HOOKSTREAM_CONSUMER_GROUP_PREFIX", "") + group
