"""`python -m bench` (`make bench`): every stage in order against one fresh broker, then the report.

A stage that fails is recorded in the report (and makes the exit status 1) without stopping
the stages after it, so one broken app never costs the rest of a run.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench import groups, launch, machine, report, trials, wrk
from bench.broker import BenchBroker, producer_performance
from bench.config import GUNICORN_APPS, BenchConfig, WorkerSetting, load_config
from bench.ingest import Workspace, measure_app
from bench.profile import profile_endpoint, profile_producer
from hookstream_dev.process import java_binary

T = TypeVar("T")
KAFKA_APPS = ("hookstream", "baseline", "peer")  # stepped; the ceilings only need the open step
TRIED = launch.REPO / "docs" / "benchmarks" / "what-was-tried.md"


class Run:
    def __init__(self, cfg: BenchConfig, ws: Workspace) -> None:
        self.cfg, self.ws = cfg, ws
        self.started = time.monotonic()
        self.failures: dict[str, str] = {}

    def log(self, message: str) -> None:
        print(f"[bench {time.monotonic() - self.started:6.0f}s] {message}", file=sys.stderr, flush=True)

    def stage(self, name: str, fn: Callable[[], T]) -> T | None:
        self.log(f"{name} ...")
        try:
            return fn()
        except Exception as exc:  # a failed stage is reported, and the run goes on
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            self.log(f"{name} FAILED: {self.failures[name]} (logs: {self.ws.log_dir})")
            return None

    # -- stages ---------------------------------------------------------------------------

    def worker_trials(self) -> list[dict[str, Any]]:
        """Open-throttle runs of each app under each setting it may choose from: Hookstream's
        worker counts, and the gunicorn apps' worker classes and sizes."""
        cfg = self.cfg
        plan: list[tuple[str, WorkerSetting]] = []
        if cfg.hookstream_workers is None and "hookstream" in cfg.apps:
            plan += [("hookstream", WorkerSetting.uvicorn(n)) for n in cfg.hookstream_worker_trials]
        if cfg.worker_setting is None:
            plan += [(app, s) for s in cfg.worker_trials for app in GUNICORN_APPS if app in cfg.apps]
        found: list[dict[str, Any]] = []
        for i, (app, setting) in enumerate(plan):
            trial_run = partial(measure_app, self.ws, app, setting, (0,), cfg.trial_s, f"-trial{i}")
            result = self.stage(f"trial {app} {setting.label}", trial_run)
            if result:
                found.append(trials.trial_record(app, setting.label, result["steps"][0]))
            else:
                found.append({"app": app, "setting": setting.label, "error": "failed"})
        return found

    def choose_settings(self, found: list[dict[str, Any]]) -> dict[str, tuple[WorkerSetting, str]]:
        """Each app's setting and why: a flag's, else its trial's winner, else a default."""
        cfg = self.cfg
        tried = {s.label: s for s in cfg.worker_trials}
        tried.update((f"uvicorn@{n}", WorkerSetting.uvicorn(n)) for n in cfg.hookstream_worker_trials)

        def pick(
            app: str, given: WorkerSetting | None, flag: str, default: WorkerSetting
        ) -> tuple[WorkerSetting, str]:
            if given is not None:
                return given, f"given by {flag}"
            won = trials.choose(found, app)
            if won:
                return tried[won[0]], won[1]
            return default, "no trial of it ran: the default"

        given_hookstream = WorkerSetting.uvicorn(cfg.hookstream_workers) if cfg.hookstream_workers else None
        chosen = {
            "hookstream": pick(
                "hookstream", given_hookstream, "--hookstream-workers", WorkerSetting.uvicorn(2)
            ),
            "peer": (launch.PEER, "fixed: uvicorn with 2 workers, as articles 001 and 004 run it"),
        }
        for app in GUNICORN_APPS:
            chosen[app] = pick(app, cfg.worker_setting, "--workers", WorkerSetting("gthread", 2, 32))
        return chosen

    def ingest(self, settings: dict[str, WorkerSetting]) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        for app in self.cfg.apps:
            steps = self.cfg.steps if app in KAFKA_APPS else (0,)
            name = f"ingest {app}"
            measure = partial(measure_app, self.ws, app, settings[app], steps, self.cfg.step_s)
            result = self.stage(name, measure)
            apps[app] = result or {"app": app, "error": self.failures.get(name, "failed")}
            if result:
                self.log(f"{name}: " + ", ".join(map(_brief, result["steps"])))
        return apps

    def broker_limit(self, hookstream_rps: float | None) -> dict[str, Any]:
        size = groups.record_size()
        topic = self.ws.broker.create_topic("bench-perf")
        perf = producer_performance(self.ws.broker.bootstrap, topic, self.cfg.perf_records, size)
        times = round(perf.records_per_s / hookstream_rps, 1) if hookstream_rps else None
        return {"record_size": size, **perf.__dict__, "times_hookstream": times}

    def consumers(self) -> dict[str, Any]:
        count, bootstrap = self.cfg.prefill_events, self.ws.broker.bootstrap
        topic = self.ws.broker.create_topic("bench-consume")
        self.ws.broker.create_topic(f"{topic}-dlq")  # where poison would go (app_env names it)
        fill_s = groups.prefill(bootstrap, topic, count, f"{self.ws.run_id}-prefill")
        raw = groups.raw_loop(bootstrap, topic, count)
        decoding = groups.raw_loop(bootstrap, topic, count, decode=True)
        self.log(
            f"raw poll loop: {raw['events_per_s']:.0f} events/s, {decoding['events_per_s']:.0f} decoding"
        )
        measured: dict[str, Any] = {}
        for group in groups.GROUPS:
            result = self.stage(
                f"consumer {group}", partial(groups.measure_group, self.ws, group, topic, count)
            )
            if result:
                result["fraction_of_raw"] = round(result["events_per_s"] / raw["events_per_s"], 3)
                self.log(f"consumer {group}: {result['events_per_s']:.0f} events/s")
            measured[group] = result or {"error": self.failures.get(f"consumer {group}", "failed")}
        return {
            "prefill_events": count,
            "prefill_s": round(fill_s, 1),
            "raw_poll_loop": raw,
            "raw_poll_loop_decoding": decoding,
            "groups": measured,
        }


def _brief(step: dict[str, Any]) -> str:
    return f"{step['offered_rps'] or 'open'}->{step['acked_rps']:.0f}/s p99 {step['latency_ms']['p99']:.1f}ms"


def _memory(results: dict[str, Any]) -> dict[str, list[float]]:
    """Peak RSS per worker of each app, and per consumer process."""
    memory: dict[str, list[float]] = {}
    for name, app in results.get("apps", {}).items():
        workers = [p["peak_rss_mb"] for p in app.get("peak_rss_mb", []) if p["role"] == "worker"]
        if workers:
            memory[f"{name} workers"] = workers
    consumers = results.get("consumers", {})
    if consumers.get("raw_poll_loop"):
        memory["raw poll loop"] = [consumers["raw_poll_loop"]["peak_rss_mb"]]
    for group, result in consumers.get("groups", {}).items():
        if "peak_rss_mb" in result:
            memory[f"consumer {group}"] = [result["peak_rss_mb"]]
    return memory


def _warm_up(ws: Workspace) -> float:
    """Records through the broker before any measurement, so the JIT has compiled its hot
    paths: otherwise whichever app comes first is measured against a slower broker."""
    topic = ws.broker.create_topic("bench-warmup")
    return groups.prefill(ws.broker.bootstrap, topic, ws.cfg.warm_records, f"{ws.run_id}-warmup")


def _execute(cfg: BenchConfig, run: Run, results: dict[str, Any]) -> None:
    run.stage("broker warm-up", partial(_warm_up, run.ws))
    found = run.stage("worker trials", run.worker_trials) if "workers" in cfg.stages else None
    if found:
        results["worker_trials"] = found
    chosen = run.choose_settings(found or [])
    results["worker_choice"] = {app: {"setting": s.label, "why": why} for app, (s, why) in chosen.items()}
    settings = {app: setting for app, (setting, _) in chosen.items()}
    for app, (setting, why) in chosen.items():
        run.log(f"{app}: {setting.label} ({why})")
    if "ingest" in cfg.stages:
        results["apps"] = run.ingest(settings)
    hookstream_rps = results.get("apps", {}).get("hookstream", {}).get("peak_acked_rps")
    if "broker" in cfg.stages:
        results["broker"] = run.stage("broker limit", partial(run.broker_limit, hookstream_rps)) or {}
    if "consumers" in cfg.stages:
        results["consumers"] = run.stage("consumers", run.consumers) or {}
    hookstream = settings["hookstream"]
    if "e2e" in cfg.stages:
        results["end_to_end"] = run.stage("end to end", partial(groups.end_to_end, run.ws, hookstream)) or {}
    if "profile" in cfg.stages:
        results["profile"] = run.stage("profile", partial(profile_producer, run.ws, hookstream)) or {}
        endpoint = partial(profile_endpoint, run.ws, cfg.endpoint_requests)
        results["profile"]["endpoint"] = run.stage("endpoint profile", endpoint) or {}


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    try:
        wrk.wrk_binary()
        java_binary()
    except Exception as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    # The broker and the apps run in sessions of their own: a terminated run must still stop them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if cfg.quick else "full",
        "machine": machine.describe(launch.REPO),
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in cfg.__dict__.items()
            if k not in ("worker_trials", "worker_setting")
        },
    }
    with tempfile.TemporaryDirectory(prefix="hookstream-bench-") as tmp:
        home = Path(tmp)
        with BenchBroker(home / "kafka") as broker:
            ws = Workspace(cfg, broker, home, uuid.uuid4().hex[:8])
            run = Run(cfg, ws)
            run.log(f"broker on {broker.bootstrap}; {results['mode']} run, stages {','.join(cfg.stages)}")
            _execute(cfg, run, results)
            results["memory"] = _memory(results)
            if TRIED.exists():  # history the harness cannot measure, kept by hand beside the report
                results["what_was_tried"] = TRIED.read_text()
            results["failures"] = run.failures
            results["duration_s"] = round(time.monotonic() - run.started, 1)
            results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
            final = report.summarize(results)
            paths = report.write(final, cfg.out_dir)
    print(report.markdown(final).split("## Ingest, step by step")[0])
    print("wrote " + ", ".join(str(p) for p in paths))
    return 1 if run.failures else 0
