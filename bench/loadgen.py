"""Drive vegeta (`go install github.com/tsenart/vegeta/v12`, done by `make bench`) and read back
what each request did.

An offered-rate step is an open model: vegeta sends each request at its slot in a constant
schedule (`rate` per second) whether or not earlier answers came back, opening more
connections when every open one is busy. Latency is then taken from each request's INTENDED
send time, slot `seq` of the schedule, not from when it was written: a request that waited
behind a slow answer (or behind a generator that could not keep up) is charged that wait,
so a p99 at a fixed rate is not flattered by coordinated omission. The open step is a closed
loop of `connections` workers, each sending as soon as its last answer came: it measures how
fast the app answers, and its latency is from the send.
"""

from __future__ import annotations

import csv
import io
import math
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.results import Latency

VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
NO_TARGETS = "no targets to attack"


class LoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadResult:
    offered_rps: int  # 0: open throttle
    duration_s: float  # first send to last answer
    requests: int
    acked: int  # 2xx
    non_2xx: int
    socket_errors: int
    timeouts: int
    latency_ms: Latency  # from the intended send time at an offered rate, from the send when open
    service_p99_ms: float  # from the send, whatever the rate
    loadgen_cpu_s: float = 0.0

    @property
    def acked_rps(self) -> float:
        return self.acked / self.duration_s if self.duration_s else 0.0


def vegeta_binary() -> str:
    """vegeta from the venv, built there with `go install` the first time (a pinned version,
    so every run loads the apps the same way)."""
    beside = Path(sys.executable).parent / "vegeta"
    if beside.exists():
        return str(beside)
    go = shutil.which("go")
    if go is None:
        raise LoadError(
            f"the load generator is built with Go: install Go 1.22+ (`make bench` does), or {VEGETA_MODULE}"
        )
    print(f"bench: building the load generator: go install {VEGETA_MODULE}", file=sys.stderr, flush=True)
    built = subprocess.run(
        [go, "install", VEGETA_MODULE], env={**os.environ, "GOBIN": str(beside.parent)},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if built.returncode != 0 or not beside.exists():
        raise LoadError(f"go install {VEGETA_MODULE} failed: {built.stderr.strip()[-400:]}")
    return str(beside)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank, as HdrHistogram and vegeta report it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _latency(values_ns: list[int]) -> Latency:
    ordered = sorted(v / 1e6 for v in values_ns) or [0.0]
    return Latency(
        p50=round(percentile(ordered, 0.50), 3),
        p90=round(percentile(ordered, 0.90), 3),
        p95=round(percentile(ordered, 0.95), 3),
        p99=round(percentile(ordered, 0.99), 3),
        max=round(ordered[-1], 3),
        mean=round(sum(ordered) / len(ordered), 3),
    )


def parse_csv(text: str, offered_rps: int, loadgen_cpu_s: float = 0.0) -> LoadResult:
    """`vegeta encode --to csv`: timestamp (ns), code, latency (ns), bytes out, bytes in, error,
    body, attack, seq, method, url, headers; one row per request."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if any(row[5] == NO_TARGETS for row in rows):
        raise LoadError("the step ran out of distinct requests: raise BENCH_OPEN_MAX_RPS")
    if not rows:
        raise LoadError("vegeta sent no request")
    sent = [(int(row[0]), int(row[1]), int(row[2]), row[5], int(row[8])) for row in rows]
    first = min(ts for ts, *_ in sent)
    last = max(ts + latency for ts, _, latency, _, _ in sent)
    answered = [(ts, latency, seq) for ts, code, latency, _, seq in sent if code]
    if offered_rps:
        # slot `seq` of the schedule began at first + seq / rate: measure from there
        interval_ns = 1e9 / offered_rps
        from_slot = [int(ts + latency - (first + seq * interval_ns)) for ts, latency, seq in answered]
    else:
        from_slot = [latency for _, latency, _ in answered]
    timeouts = sum(1 for _, code, _, error, _ in sent if not code and "timeout" in error.lower())
    return LoadResult(
        offered_rps=offered_rps,
        duration_s=round((last - first) / 1e9, 3),
        requests=len(sent),
        acked=sum(1 for _, code, *_ in sent if 200 <= code < 300),
        non_2xx=sum(1 for _, code, *_ in sent if code and not 200 <= code < 300),
        socket_errors=sum(1 for _, code, *_ in sent if not code) - timeouts,
        timeouts=timeouts,
        latency_ms=_latency(from_slot),
        service_p99_ms=_latency([latency for _, latency, _ in answered]).p99,
        loadgen_cpu_s=round(loadgen_cpu_s, 3),
    )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    targets: Path, rate: int, seconds: float, connections: int, max_in_flight: int, timeout_s: float
) -> LoadResult:
    """One bounded attack: `rate` req/s offered (0 = open, `connections` at a time) for `seconds`."""
    vegeta = vegeta_binary()
    out = targets.with_suffix(".bin")
    pace = ["-rate", f"{rate}/1s", "-workers", str(connections), "-max-workers", str(max_in_flight)]
    if not rate:
        pace = ["-rate", "0", "-workers", str(connections), "-max-workers", str(connections)]
    cmd = [
        vegeta, "attack", "-format", "json", "-lazy", "-targets", str(targets), *pace,
        "-duration", f"{seconds:g}s", "-timeout", f"{timeout_s:g}s", "-max-body", "0", "-http2=false",
        "-output", str(out),
    ]  # fmt: skip
    cpu_before = _children_cpu_s()
    limit = seconds + timeout_s + 60
    try:
        attack = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
        cpu = _children_cpu_s() - cpu_before
        if attack.returncode != 0:
            raise LoadError(f"vegeta attack exited {attack.returncode}: {attack.stderr.strip()[-400:]}")
        encoded = subprocess.run(
            [vegeta, "encode", "--to", "csv", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"vegeta did not finish within {exc.timeout:.0f}s") from exc
    except subprocess.CalledProcessError as exc:
        raise LoadError(f"vegeta encode exited {exc.returncode}: {exc.stderr.strip()[-400:]}") from exc
    finally:
        out.unlink(missing_ok=True)
    return parse_csv(encoded.stdout, rate, cpu)
