"""Where the Hookstream producer's time goes under open-throttle load (py-spy, sampled).

py-spy samples every worker (`--subprocesses`) 100 times a second without touching the
code, and writes collapsed stacks: `frame;frame;...;leaf count` per line. `--gil` keeps only
the thread holding the GIL: a gthread worker runs Python on one thread at a time, so that is
where its capacity goes (threads parked on a lock or in epoll would otherwise swamp the
profile). From those we keep the functions that are on the CPU themselves (self) and the
share of samples in which each part of the stack appears (inclusive).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections import Counter
from typing import Any

from bench import launch
from bench.config import WorkerSetting
from bench.ingest import Workspace, load
from bench.servers import free_port, running

# Parts of the stack worth telling apart, first match wins (checked against each frame).
COMPONENTS = (
    ("kafka publish (produce + wait for ack)", "producer/publisher.py"),
    ("dedupe", "producer/dedupe.py"),
    ("avro envelope encode", "schemas/codec.py"),
    ("signature check", "producer/providers/"),
    ("metrics", "prometheus_client/"),
    ("logging", "logging/"),
    ("json", "json/"),
    ("webhook endpoint (own code)", "producer/webhook.py"),
    ("gunicorn (HTTP parse, socket I/O)", "gunicorn/"),
    ("werkzeug", "werkzeug/"),
    ("flask", "flask/"),
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


def summarize(stacks: list[tuple[list[str], int]], top: int = 15) -> dict[str, Any]:
    total = sum(count for _, count in stacks) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    components: Counter[str] = Counter()
    for frames, count in stacks:
        self_time[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += count
        for name, marker in COMPONENTS:
            if any(marker in frame for frame in frames):
                components[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"name": name, "pct": round(100 * n / total, 1)} for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self": share(self_time),
        "inclusive": share(inclusive),
        "components": [{"name": n, "pct": round(100 * components[n] / total, 1)} for n, _ in COMPONENTS],
    }


def profile_producer(ws: Workspace, setting: WorkerSetting) -> dict[str, Any]:
    """Open-throttle load on a fresh producer while py-spy records all its workers."""
    py_spy = shutil.which("py-spy") or str(launch.BIN / "py-spy")
    seconds = ws.cfg.profile_s
    topic = ws.broker.create_topic("bench-profile")
    server = launch.server(
        "hookstream", free_port(), setting, ws.app_env(topic, "profile"), ws.log_dir, "-profile"
    )
    out = ws.tmp / "profile.txt"
    with running(server, ready_probe=ws.requests("profile-probe", 1)):
        assert server.process is not None
        cmd = [py_spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--gil", "--rate", "100",
               "--duration", f"{int(seconds)}", "--format", "raw", "--output", str(out)]  # fmt: skip
        recorder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        loaded: dict[str, Any] = {}
        loader = threading.Thread(
            target=lambda: loaded.update(load(ws, server, "profile", 0, seconds + 1).as_dict()), daemon=True
        )
        loader.start()
        _, err = recorder.communicate(timeout=seconds + 60)
        loader.join(timeout=seconds + 60)
    if recorder.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {err.strip()[-400:]}")
    shutil.copy(out, ws.cfg.out_dir / "profile-hookstream.txt")
    return {
        "setting": setting.label,
        "acked_rps_while_sampled": loaded.get("acked_rps"),
        "collapsed_stacks": "profile-hookstream.txt",
        **summarize(parse_collapsed(out.read_text())),
    }
