"""Start an app under test on its own loopback port, wait until it answers, measure, stop it.

Each app runs in a process group of its own (a new session), so stopping it reaches its
workers and nothing else; it is found again only by the pid this module started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.payloads import read_target

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "main": the process started; "worker": a descendant; "helper": multiprocessing's tracker
    command: str
    peak_rss_mb: float


def tree(root: int) -> list[psutil.Process]:
    """`root` and every living process below it."""
    try:
        process = psutil.Process(root)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by `root` and its living descendants."""
    total = 0.0
    for process in tree(root):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class PeakMemory:
    """The highest resident set each process of a tree reached, sampled while it runs (psutil
    reads the current RSS only, so a sampler keeps the peak)."""

    INTERVAL_S = 0.25

    def __init__(self, root: int) -> None:
        self.root = root
        self.peaks: dict[int, ProcessMemory] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{root}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            self.sample()

    def sample(self) -> None:
        for process in tree(self.root):
            with contextlib.suppress(psutil.Error):
                rss_mb = round(process.memory_info().rss / 2**20, 1)
                known = self.peaks.get(process.pid)
                if known is None:
                    command = " ".join(process.cmdline()[:4])
                    role = (
                        "main"
                        if process.pid == self.root
                        else "helper"
                        if "resource_tracker" in command
                        else "worker"
                    )
                    known = ProcessMemory(process.pid, role, command, 0.0)
                if rss_mb > known.peak_rss_mb:
                    self.peaks[process.pid] = ProcessMemory(known.pid, known.role, known.command, rss_mb)

    def stop(self) -> list[ProcessMemory]:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=5)
        return list(self.peaks.values())


@dataclass
class Server:
    """One process group under test; `url` answers once `start()` returns."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    port: int
    log_path: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _memory: PeakMemory | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_probe: Path | None = None) -> None:
        """Launch, then wait until the port listens and (if given) the first signed request of
        `ready_probe` (a targets file) is answered 2xx: the whole path works."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv), env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.cwd,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._listening():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name} did not listen on {self.port} in {READY_TIMEOUT_S:.0f}s")
            time.sleep(0.2)
        if ready_probe is not None:
            self._probe(ready_probe, deadline)
        self._memory = PeakMemory(self.process.pid)

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")

    def _probe(self, targets: Path, deadline: float) -> None:
        from bench.apps.signature import PATH

        body, headers = read_target(targets)
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            req = urllib.request.Request(self.url + PATH, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as response:
                    if 200 <= response.status < 300:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise ServerError(f"{self.name} never answered a signed request with 2xx; last answer: {last}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid) if self.process else 0.0

    def memory(self) -> list[ProcessMemory]:
        """Peak RSS of each process since the server answered; stops the sampling."""
        return self._memory.stop() if self._memory else []

    def stop(self) -> None:
        """SIGTERM the group (a graceful gunicorn/uvicorn shutdown), SIGKILL it if it lingers."""
        if self._memory is not None:
            self._memory.stop()
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # its own session: the group id is the pid we started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        # workers that outlived their master still belong to the group we made
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def running(server: Server, ready_probe: Path | None = None) -> Iterator[Server]:
    try:
        server.start(ready_probe)
        yield server
    finally:
        server.stop()
