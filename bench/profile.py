"""Where the Hookstream producer's time goes under open-throttle load (py-spy, sampled).

py-spy samples every worker (`--subprocesses`) 100 times a second without touching the
code, and writes collapsed stacks: `frame;frame;...;leaf count` per line. `--gil` keeps only
the thread holding the GIL: a worker runs Python on one thread at a time (a request's, or
librdkafka's poll thread handing acks over), so that is where its capacity goes; without it,
threads parked in waits swamp the profile (py-spy does not reliably tell them idle here).
`--nonblocking` leaves the workers
running while they are read, so sampling does not slow what it measures. GIL samples come
sparse on a busy box (a few hundred per run), so read the shares as +-5 points.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

from bench import launch
from bench.apps.signature import PATH
from bench.config import WorkerSetting
from bench.ingest import Workspace, load
from bench.results import EndpointProfile, Profile, Share
from bench.servers import running
from hookstream_dev.process import free_port_block

# What a sample is charged to: the outermost frame (from the thread's root down) that belongs
# to one of these parts; a sample in none of them goes to the deepest container it passed
# through (the server's own HTTP handling, or the endpoint's own code), else to "other".
PARTS = (
    ("kafka publish (produce + wait for ack)", "producer/publisher.py"),
    ("dedupe", "producer/dedupe.py"),
    ("avro envelope encode", "schemas/codec.py"),
    ("signature check", "producer/providers/"),
    ("metrics", "prometheus_client/"),
    ("logging (one JSON line per request)", "logging/"),
    ("json parse", "json/"),
    ("werkzeug", "werkzeug/"),
    ("flask", "flask/"),
)
CONTAINERS = (
    ("gunicorn (HTTP parse, socket I/O, thread pool)", "gunicorn/"),
    ("webhook endpoint (own code)", "producer/webhook.py"),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _short(frame: str) -> str:
    """`publish (/work/main/producer/publisher.py:71)` -> `publish (producer/publisher.py)`."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def charge(frames: list[str]) -> str:
    """The part of the code one sample is charged to (see PARTS)."""
    container = "other"
    for frame in frames:
        for name, marker in PARTS:
            if marker in frame:
                return name
        for name, marker in CONTAINERS:
            if marker in frame:
                container = name
    return container


def summarize(
    stacks: list[tuple[list[str], int]], top: int = 15
) -> tuple[int, tuple[Share, ...], tuple[Share, ...]]:
    """Samples, their shares by part of the code, and the top functions by self time."""
    total = sum(count for _, count in stacks) or 1
    self_time: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    for frames, count in stacks:
        frames = [f for f in frames if not f.startswith("process ")]  # --subprocesses' root frame
        if not frames:
            continue
        self_time[_short(frames[-1])] += count
        parts[charge(frames)] += count

    def share(counter: Counter[str], limit: int | None = top) -> tuple[Share, ...]:
        return tuple(Share(name, round(100 * n / total, 1)) for name, n in counter.most_common(limit))

    return total, share(parts, None), share(self_time)


def profile_producer(ws: Workspace, setting: WorkerSetting) -> Profile:
    """Open-throttle load on a fresh producer while py-spy records all its workers."""
    py_spy = shutil.which("py-spy") or str(launch.BIN / "py-spy")
    seconds = ws.cfg.profile_s
    topic = ws.broker.create_topic("bench-profile")
    server = launch.server(
        "hookstream",
        free_port_block(1),
        setting,
        ws.env_of("hookstream", topic, "profile"),
        ws.log_dir,
        "-profile",
    )
    out = ws.tmp / "profile.txt"
    with running(server, ready_probe=ws.targets("profile-probe", server.url + PATH, 1)):
        assert server.process is not None
        cmd = [
            py_spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--gil", "--nonblocking",
            "--rate", "100", "--duration", f"{int(seconds)}", "--format", "raw", "--output", str(out),
        ]  # fmt: skip
        recorder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        loaded: dict[str, float] = {}
        loader = threading.Thread(
            target=lambda: loaded.update(acked_rps=load(ws, server, "profile", 0, seconds + 1).acked_rps),
            daemon=True,
        )
        loader.start()
        _, err = recorder.communicate(timeout=seconds + 60)
        loader.join(timeout=seconds + 60)
    if recorder.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {err.strip()[-400:]}")
    shutil.copy(out, ws.cfg.out_dir / "profile-hookstream.txt")
    samples, parts, self_time = summarize(parse_collapsed(out.read_text()))
    acked = loaded.get("acked_rps")
    return Profile(setting.label, round(acked, 1) if acked else None, samples, parts, self_time)


def profile_endpoint(ws: Workspace, count: int) -> EndpointProfile:
    """`bench.endpoint_profile` in its own process against the run's broker."""
    topic = ws.broker.create_topic("bench-endpoint-profile")
    metrics_dir, data_dir = ws.tmp / "endpoint-metrics", ws.tmp / "data" / "endpoint-profile"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.endpoint_profile", ws.broker.bootstrap, topic, str(count),
           str(metrics_dir), str(data_dir)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=launch.REPO)
    if done.returncode != 0:
        raise RuntimeError(f"endpoint profile failed: {done.stderr.strip()[-400:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

    def shares(key: str) -> tuple[Share, ...]:
        return tuple(Share(**share) for share in found[key])

    return EndpointProfile(
        requests=found["requests"],
        ok=found["ok"],
        wall_ms_per_request=found["wall_ms_per_request"],
        cpu_ms_per_request=found["cpu_ms_per_request"],
        profiled_cpu_ms_per_request=found["profiled_cpu_ms_per_request"],
        by_file=shares("own_time_by_file"),
        by_function=shares("top_own_time"),
    )
