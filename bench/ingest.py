"""Load each app at each offered rate, in interleaved rounds, and record what it acknowledged.

The apps run A B C ... A B C ... (`rounds` times), each started fresh, so a slow spell of a
shared machine lands on every app alike instead of on whichever ran then; each app's figures
are then the median over its rounds, with the lowest and highest beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import launch, loadgen, payloads
from bench.apps.signature import PATH
from bench.broker import BenchBroker
from bench.config import HEADROOM_RATE, BenchConfig, WorkerSetting
from bench.results import AppRun, AppSummary, Spread, Step
from bench.servers import Server, running
from hookstream_dev.process import free_port_block

WARMUP_RATE = 500


@dataclass(frozen=True)
class Workspace:
    """What every stage of one run shares."""

    cfg: BenchConfig
    broker: BenchBroker
    tmp: Path
    run_id: str
    app_extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # the producer's variants

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

    def env_of(self, app: str, topic: str, data_name: str) -> dict[str, str]:
        env = {**self.app_env(topic, data_name), **self.app_extra_env.get(app, {})}
        if launch.is_producer(app):
            env.update(self.cfg.hookstream_env)
        return env

    def targets(self, name: str, url: str, count: int) -> Path:
        folder = self.tmp / "requests"
        folder.mkdir(exist_ok=True)
        return payloads.write_targets(folder / f"{name}.jsonl", url, f"{self.run_id}-{name}", count)


def load(ws: Workspace, server: Server, name: str, rate: int, seconds: float) -> loadgen.LoadResult:
    """One step: fresh distinct deliveries, `rate` offered for `seconds`."""
    cfg = ws.cfg
    count = payloads.requests_needed(rate, seconds, cfg.open_max_rps)
    targets = ws.targets(name, server.url + PATH, count)
    try:
        return loadgen.run(targets, rate, seconds, cfg.connections, cfg.max_in_flight, cfg.timeout_s)
    finally:
        targets.unlink()


def measured_step(ws: Workspace, server: Server, name: str, rate: int, seconds: float) -> Step:
    """A step, plus the cores the app, the broker and the load generator each kept busy
    during it: on a small machine their sum says whether the box itself was the limit."""
    app_cpu, broker_cpu = server.cpu_seconds(), ws.broker.cpu_seconds()
    result = load(ws, server, name, rate, seconds)
    span = result.duration_s or 1.0
    return Step(
        offered_rps=rate,
        duration_s=result.duration_s,
        requests=result.requests,
        acked=result.acked,
        non_2xx=result.non_2xx,
        socket_errors=result.socket_errors,
        timeouts=result.timeouts,
        latency_ms=result.latency_ms,
        service_p99_ms=result.service_p99_ms,
        cores_app=round((server.cpu_seconds() - app_cpu) / span, 3),
        cores_broker=round((ws.broker.cpu_seconds() - broker_cpu) / span, 3),
        cores_loadgen=round(result.loadgen_cpu_s / span, 3),
    )


def measure_app(
    ws: Workspace,
    app: str,
    setting: WorkerSetting,
    steps: Sequence[int],
    step_s: float,
    label: str,
    round_no: int,
) -> AppRun:
    """Start `app`, warm it up, run every step against it, read its memory, stop it."""
    name = f"{app}{label}"
    topic = ws.broker.create_topic(f"bench-{name}") if app in launch.USES_KAFKA else f"bench-{name}"
    server = launch.server(app, free_port_block(1), setting, ws.env_of(app, topic, name), ws.log_dir, label)
    probe = ws.targets(f"{name}-probe", server.url + PATH, 1)
    with running(server, ready_probe=probe):
        warmup = load(ws, server, f"{name}-warmup", WARMUP_RATE, ws.cfg.warmup_s)
        measured = tuple(
            measured_step(ws, server, f"{name}-{rate or 'open'}", rate, step_s) for rate in steps
        )
        memory = server.memory()
    workers = tuple(m.peak_rss_mb for m in memory if m.role == "worker") or tuple(
        m.peak_rss_mb for m in memory
    )
    run = AppRun(app, setting.label, round_no, measured, workers)
    if app not in launch.USES_KAFKA:
        return run
    # Every 2xx promised a record on the broker: check the promise.
    acked = 1 + warmup.acked + sum(s.acked for s in measured)
    return AppRun(app, setting.label, round_no, measured, workers, acked, ws.broker.record_count(topic))


def interleaved(apps: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, app) in the order they run: A B C A B C ..."""
    for round_no in range(1, rounds + 1):
        for app in apps:
            yield round_no, app


def summarize_app(runs: Sequence[AppRun]) -> AppSummary:
    """One app's rounds: medians and spread of what the headline quotes."""

    def over(figure: Callable[[AppRun], float | None]) -> Spread | None:
        return Spread.of([figure(run) for run in runs])

    def p99_at(rate: int) -> Callable[[AppRun], float | None]:
        def figure(run: AppRun) -> float | None:
            step = run.at(rate)
            return step.latency_ms.p99 if step else None

        return figure

    missing = [run.acked_but_missing for run in runs if run.acked_but_missing is not None]
    return AppSummary(
        app=runs[0].app,
        setting=runs[0].setting,
        acked_rps=over(lambda run: round(run.best.acked_rps, 1) if run.best else None),
        p99_ms_at_1000=over(p99_at(1000)),
        p99_ms_at_500=over(p99_at(HEADROOM_RATE)),
        cpu_ms_per_request=over(lambda run: run.best.cpu_ms_per_request if run.best else None),
        cores_app=over(lambda run: run.best.cores_app if run.best else None),
        errors=sum(run.errors for run in runs),
        acked_but_missing=sum(missing) if missing else None,
    )
