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
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "main": the process started; "worker": a descendant; "helper": multiprocessing's tracker
    command: str
    peak_rss_mb: float


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def descendants(root: int) -> list[int]:
    """Every living process below `root`, found through the kernel's parent links."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # the command name may hold spaces and parentheses: split after the last ")"
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by `root` and its living descendants."""
    total = 0
    for pid in [root, *descendants(root)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def peak_memory(root: int) -> list[ProcessMemory]:
    """Peak resident set (VmHWM) of `root` and each descendant, read before they exit."""
    result = []
    for pid in [root, *descendants(root)]:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            command = " ".join(part.decode(errors="replace") for part in argv[:4] if part)
            role = "main" if pid == root else "helper" if "resource_tracker" in command else "worker"
            result.append(ProcessMemory(pid, role, command, round(_status_kb(pid, "VmHWM") / 1024, 1)))
    return result


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_probe: Path | None = None) -> None:
        """Launch, then wait until the port listens and (if given) one signed request from
        `ready_probe` (a request-file line) is answered 2xx: the whole path works."""
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

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")

    def _probe(self, line_file: Path, deadline: float) -> None:
        from bench.apps.signature import PATH

        signature, body = line_file.read_bytes().split(b"\n", 1)[0].split(b"\t", 1)
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            req = urllib.request.Request(
                self.url + PATH, data=body, method="POST",
                headers={"Content-Type": "application/json", "X-Fastio-Signature": signature.decode()},
            )  # fmt: skip
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
        return peak_memory(self.process.pid) if self.process else []

    def stop(self) -> None:
        """SIGTERM the group (a graceful gunicorn/uvicorn shutdown), SIGKILL it if it lingers."""
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
