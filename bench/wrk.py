"""Drive Debian's `wrk` with `lua/signed_rate.lua` and read back what it measured."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "lua" / "signed_rate.lua"
MARKER = "BENCH_RESULT "


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    offered_rps: int  # 0: open throttle
    duration_s: float
    requests: int  # answered, whatever the status
    non_2xx: int  # wrk counts statuses >= 400; the apps under test answer nothing in 3xx
    socket_errors: int  # connect, read, write
    timeouts: int
    latency_ms: dict[str, float]
    repeats: int  # rotations past the end of the request file
    loadgen_cpu_s: float  # wrk's own CPU time: if near duration x threads, wrk was the limit

    @property
    def acked(self) -> int:
        return self.requests - self.non_2xx

    @property
    def acked_rps(self) -> float:
        return self.acked / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "acked": self.acked,
            "acked_rps": round(self.acked_rps, 1),
            "errors": self.errors,
        }


def parse_output(stdout: str, offered_rps: int, loadgen_cpu_s: float = 0.0) -> WrkResult:
    """The result line printed by the Lua `done()`; wrk's own human summary is ignored."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise WrkError(f"wrk printed no {MARKER.strip()} line; output was: {stdout.strip()[-400:]!r}")
    raw = json.loads(lines[-1][len(MARKER) :])
    errors = raw["errors"]
    return WrkResult(
        offered_rps=offered_rps,
        duration_s=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        non_2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"],
        timeouts=errors["timeout"],
        latency_ms={name: round(value / 1000, 3) for name, value in raw["latency_us"].items()},
        repeats=raw["wraps"],
        loadgen_cpu_s=round(loadgen_cpu_s, 2),
    )


def wrk_binary() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk not found: install the load generator (Debian: apt-get install -y wrk)")
    return wrk


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    url: str,
    path: str,
    request_file: Path,
    rate: int,
    seconds: float,
    connections: int,
    threads: int,
    timeout_s: float,
) -> WrkResult:
    """One bounded wrk run: `rate` req/s offered (0 = open) for `seconds`."""
    cmd = [
        wrk_binary(), "-t", str(threads), "-c", str(max(connections, threads)),
        "-d", f"{seconds:g}s", "--timeout", f"{timeout_s:g}s", "-s", str(SCRIPT), url,
        "--", str(request_file), str(rate), str(threads), path,
    ]  # fmt: skip
    cpu_before = _children_cpu_s()
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {seconds + timeout_s + 60:.0f}s") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {(done.stderr or done.stdout).strip()[-400:]}")
    return parse_output(done.stdout, rate, _children_cpu_s() - cpu_before)
