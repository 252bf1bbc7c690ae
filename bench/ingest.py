"""Load one app with wrk at each offered rate and record what it acknowledged, how fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import launch, payloads, wrk
from bench.apps.signature import PATH
from bench.broker import BenchBroker
from bench.config import BenchConfig, WorkerSetting
from bench.servers import Server, free_port, running

WARMUP_RATE = 500


@dataclass(frozen=True)
class Workspace:
    """What every stage of one run shares."""

    cfg: BenchConfig
    broker: BenchBroker
    tmp: Path
    run_id: str

    @property
    def log_dir(self) -> Path:
        path = self.tmp / "logs"
        path.mkdir(exist_ok=True)
        return path

    def app_env(self, topic: str, data_name: str) -> dict[str, str]:
        """The variables Hookstream reads, which the comparison apps read too."""
        return {
            "FASTIO_WEBHOOK_SECRET": payloads.SECRET,
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "HOOKSTREAM_TOPIC": topic,
            "HOOKSTREAM_DLQ_TOPIC": f"{topic}-dlq",
            "HOOKSTREAM_DATA_DIR": str(self.tmp / "data" / data_name),
        }

    def requests(self, name: str, count: int) -> Path:
        folder = self.tmp / "requests"
        folder.mkdir(exist_ok=True)
        return payloads.write_requests(folder / f"{name}.tsv", f"{self.run_id}-{name}", count)


def load(ws: Workspace, server: Server, name: str, rate: int, seconds: float) -> wrk.WrkResult:
    """One step: fresh distinct deliveries, `rate` offered for `seconds`."""
    cfg = ws.cfg
    request_file = ws.requests(name, payloads.requests_needed(rate, seconds, cfg.open_max_rps))
    try:
        return wrk.run(
            server.url, PATH, request_file, rate, seconds, cfg.connections, cfg.wrk_threads, cfg.timeout_s
        )
    finally:
        request_file.unlink()


def measured_step(ws: Workspace, server: Server, name: str, rate: int, seconds: float) -> dict[str, Any]:
    """A step, plus the cores the app, the broker and wrk each kept busy during it: on a
    small machine the sum says whether the box itself was the limit, and who took it."""
    app_cpu, broker_cpu = server.cpu_seconds(), ws.broker.cpu_seconds()
    result = load(ws, server, name, rate, seconds)
    cores = {
        "app": (server.cpu_seconds() - app_cpu) / result.duration_s,
        "broker": (ws.broker.cpu_seconds() - broker_cpu) / result.duration_s,
        "wrk": result.loadgen_cpu_s / result.duration_s,
    }
    per_request = {
        k: round(1000 * v / result.acked_rps, 3) if result.acked_rps else None for k, v in cores.items()
    }
    return {
        **result.as_dict(),
        "cores_busy": {k: round(v, 2) for k, v in cores.items()},
        "cpu_ms_per_acked_request": per_request,
    }


def measure_app(ws: Workspace, app: str, setting: WorkerSetting, steps: tuple[int, ...], step_s: float,
                label: str = "") -> dict[str, Any]:  # fmt: skip
    """Start `app`, warm it up, run every step against it, read its memory, stop it."""
    name = f"{app}{label}"
    topic = ws.broker.create_topic(f"bench-{name}") if app in launch.USES_KAFKA else f"bench-{name}"
    env = {**ws.app_env(topic, name), **(dict(ws.cfg.hookstream_env) if app == "hookstream" else {})}
    server = launch.server(app, free_port(), setting, env, ws.log_dir, label)
    probe = ws.requests(f"{name}-probe", 1)
    with running(server, ready_probe=probe):
        warmup = load(ws, server, f"{name}-warmup", WARMUP_RATE, ws.cfg.warmup_s)
        results = [measured_step(ws, server, f"{name}-{rate or 'open'}", rate, step_s) for rate in steps]
        memory = server.memory()
    acked = 1 + warmup.acked + sum(r["acked"] for r in results)
    record: dict[str, Any] = {
        "app": app,
        "setting": setting.label,
        "steps": results,
        "peak_acked_rps": max((r["acked_rps"] for r in results), default=0.0),
        "peak_rss_mb": [m.__dict__ for m in memory],
    }
    if app in launch.USES_KAFKA:
        # Every 2xx promised a record on the broker: check the promise.
        in_topic = ws.broker.record_count(topic)
        record.update(acked_total=acked, topic_records=in_topic, acked_but_missing=max(0, acked - in_topic))
    return record
