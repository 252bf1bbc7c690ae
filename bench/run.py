"""`python -m bench` (`make bench`): every stage in order against one fresh broker, then the report.

A stage that fails is recorded in the report (and makes the exit status 1) without stopping
the stages after it, so one broken app never costs the rest of a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from bench import groups, launch, loadgen, machine, report, store_latency, trials
from bench.broker import BenchBroker, producer_performance
from bench.config import HEADROOM_RATE, BenchConfig, WorkerSetting, load_config
from bench.ingest import Workspace, interleaved, measure_app, summarize_app
from bench.profile import profile_endpoint, profile_producer
from bench.results import (
    AppRun,
    AppSummary,
    BrokerLimit,
    Comparison,
    Consumers,
    Results,
    Spread,
    Trial,
    WorkerChoice,
)
from hookstream_dev.process import free_port_block, java_binary

T = TypeVar("T")
TRIED_APPS = ("baseline", "wsgi_ceiling")  # their worker setting is theirs to choose: each at its best
STORE_CALLS = 5000


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

    def worker_trials(self, tried: tuple[str, ...]) -> list[Trial]:
        """Open-throttle runs of each app in `tried` under each gunicorn setting."""
        found: list[Trial] = []
        plan = [(app, s) for s in self.cfg.worker_trials for app in tried if app in self.cfg.apps]
        for i, (app, setting) in enumerate(plan):
            name = f"trial {app} {setting.label}"
            result = self.stage(
                name, partial(measure_app, self.ws, app, setting, (0,), self.cfg.trial_s, f"-trial{i}", 0)
            )
            found.append(
                trials.trial_of(result) if result else trials.failed(app, setting.label, self.failures[name])
            )
        return found

    def ingest(self, settings: dict[str, WorkerSetting]) -> list[AppRun]:
        """Every app, round after round, in the same order each round."""
        runs: list[AppRun] = []
        for round_no, app in interleaved(self.cfg.apps, self.cfg.rounds):
            name = f"ingest {app} round {round_no}"
            measure = partial(
                measure_app,
                self.ws,
                app,
                settings[app],
                self.cfg.steps_of(app),
                self.cfg.step_s,
                f"-r{round_no}",
                round_no,
            )
            result = self.stage(name, measure)
            if result:
                runs.append(result)
                self.log(
                    f"{name}: "
                    + ", ".join(
                        f"{s.offered_rps or 'open'}->{s.acked_rps:.0f}/s p99 {s.latency_ms.p99:.1f}ms"
                        for s in result.steps
                    )
                )
        return runs

    def broker_limit(self, hookstream_rps: float | None) -> BrokerLimit:
        size = groups.record_size()
        topic = self.ws.broker.create_topic("bench-perf")
        perf = producer_performance(self.ws.broker.bootstrap, topic, self.cfg.perf_records, size)
        times = round(perf.records_per_s / hookstream_rps, 1) if hookstream_rps else None
        return BrokerLimit(
            size, perf.records, perf.records_per_s, perf.mb_per_s, perf.p50_ms, perf.p99_ms, times
        )

    def consumers(self) -> Consumers:
        count, bootstrap = self.cfg.prefill_events, self.ws.broker.bootstrap
        topic = self.ws.broker.create_topic("bench-consume")
        self.ws.broker.create_topic(f"{topic}-dlq")  # where poison would go (app_env names it)
        fill_s = groups.prefill(bootstrap, topic, count, f"{self.ws.run_id}-prefill")
        raw = groups.raw_loop(bootstrap, topic, count)
        decoding = groups.raw_loop(bootstrap, topic, count, decode=True)
        self.log(f"raw poll loop: {raw.events_per_s:.0f} events/s, {decoding.events_per_s:.0f} decoding")
        measured = []
        for group in groups.GROUPS:
            result = self.stage(
                f"consumer {group}", partial(groups.measure_group, self.ws, group, topic, count, raw)
            )
            if result:
                measured.append(result)
                self.log(f"consumer {group}: {result.events_per_s:.0f} events/s")
        return Consumers(count, round(fill_s, 1), raw, decoding, tuple(measured))


def choose_settings(
    cfg: BenchConfig, found: list[Trial], producer: WorkerSetting
) -> dict[str, tuple[WorkerSetting, str]]:
    """Each app's worker setting and what chose it."""
    tried = {s.label: s for s in cfg.worker_trials}

    def own_best(app: str) -> tuple[WorkerSetting, str]:
        if cfg.worker_setting is not None:
            return cfg.worker_setting, "given by --workers"
        won = trials.choose(found, app)
        return (
            (tried[won[0]], won[1])
            if won
            else (WorkerSetting("gthread", 2, 32), "no trial of it ran: the default")
        )

    shipped = (
        (producer, "given by --producer-setting")
        if cfg.producer_setting
        else (producer, "producer.gunicorn_conf: the producer as it ships")
    )
    chosen = {app: shipped for app in cfg.apps if launch.is_producer(app)}
    chosen["peer"] = (launch.PEER, "fixed: uvicorn with 2 workers, as articles 001 and 004 run it")
    chosen["flask_ceiling"] = (
        (producer, "the producer's worker setting, so their CPU per request compare")
        if producer.is_gunicorn_class
        else own_best("flask_ceiling")
    )
    for app in TRIED_APPS:
        chosen[app] = own_best(app)
    return chosen


def comparisons(summaries: list[AppSummary]) -> list[Comparison]:
    """The producer's variants against the plain producer of the same rounds."""
    by_app = {s.app: s for s in summaries}
    plain = by_app.get("hookstream")

    def against_plain(
        label: str, variant: AppSummary, figure: str, reference: str, unit: str, **threshold: float
    ) -> Comparison:
        """`figure` (an AppSummary field) of `variant` and of the plain producer, their medians."""

        def median(summary: AppSummary | None) -> float | None:
            spread: Spread | None = getattr(summary, figure) if summary else None
            return spread.median if spread else None

        return Comparison(label, median(variant), reference, median(plain), unit, **threshold)

    found = []
    if "hookstream_redis" in by_app:
        redis, embedded = by_app["hookstream_redis"], "embedded (SQLite) dedupe"
        found += [
            against_plain(
                "producer with Redis dedupe, acked req/s", redis, "acked_rps", embedded, "req/s", floor=0.9
            ),
            against_plain(
                "producer with Redis dedupe, p99 at 1000 req/s",
                redis,
                "p99_ms_at_1000",
                embedded,
                "ms",
                ceiling=20.0,
            ),
            # Reported, not a target: whether Redis adds latency where the producer is not queueing.
            against_plain(
                f"producer with Redis dedupe, p99 at {HEADROOM_RATE} req/s",
                redis,
                "p99_ms_at_500",
                embedded,
                "ms",
            ),
        ]
    if "hookstream_registry" in by_app:
        registry = by_app["hookstream_registry"]
        label = "producer with the registry's framing, acked req/s"
        found.append(against_plain(label, registry, "acked_rps", "without it", "req/s", floor=0.95))
    return found


def _store_comparisons(measured: list[store_latency.StoreLatency]) -> list[Comparison]:
    by_store = {m.store: m for m in measured}
    sqlite, redis = by_store.get("sqlite"), by_store.get("redis")
    if sqlite is None or redis is None:
        return []
    return [Comparison("dedupe store add p99, Redis", redis.p99_ms, "embedded SQLite", sqlite.p99_ms, "ms")]


def codec(ws: Workspace) -> tuple[object, list[Comparison]]:
    """Encode and decode rates of the own framing and the registry's (`bench/codec_bench.py`),
    against the run's registry, or one of its own when the registry variant is not in the run."""
    from bench import codec_bench

    url = ws.app_extra_env.get("hookstream_registry", {}).get("HOOKSTREAM_SCHEMA_REGISTRY_URL")
    with contextlib.ExitStack() as stack:
        url = url or stack.enter_context(codec_bench.local_registry())
        found = codec_bench.measure(url, ws.cfg.codec_records)
    own, registry = found.own, found.registry
    return found, [
        Comparison("consumer decode rate, registry's framing", registry.decode_per_s, "own framing",
                   own.decode_per_s, "records per CPU s", floor=0.95),
        Comparison("producer encode rate, registry's framing", registry.encode_per_s, "own framing",
                   own.encode_per_s, "records per CPU s"),
    ]  # fmt: skip


def index(ws: Workspace) -> tuple[object, list[Comparison]]:
    """The indexer against a plain loop writing the same documents, on OpenSearch (a node of its
    own for the run) and on SQLite (`bench/index_sink.py`)."""
    from bench import index_sink

    found = index_sink.run(None, ws.cfg.index_events)
    plain = ((found.opensearch, "plain helpers.bulk loop"), (found.sqlite, "plain executemany"))
    return found, [
        Comparison(f"indexer events/s on {rate.backend}", rate.indexer_eps, loop, rate.plain_eps, "events/s",
                   floor=0.8, paired_ratio=rate.ratio)
        for rate, loop in plain
    ]  # fmt: skip


def archive(ws: Workspace) -> tuple[object, list[Comparison]]:
    """The archiver against a plain consume + Avro + boto3 loop on S3 (s3proxy), and its RSS over
    many event_ids (`bench/archive_sink.py`, in a process of its own: it runs a group member)."""
    from bench.archive_sink import ArchiveSinkResult

    cfg = ws.cfg
    cmd = [sys.executable, "-m", "bench.archive_sink", "--bootstrap", ws.broker.bootstrap,
           "--events", str(cfg.archive_events), "--rounds", str(cfg.archive_rounds),
           "--rss-events", str(cfg.archive_rss_events)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False, cwd=launch.REPO)
    if done.returncode != 0:
        raise RuntimeError(f"archive sink failed: {done.stderr.strip()[-400:]}")
    saved = json.loads(done.stdout.strip().splitlines()[-1])
    found = ArchiveSinkResult(**{**saved, "ratios": tuple(saved["ratios"]), "rss_mb": tuple(saved["rss_mb"])})
    rss = found.rss_mb
    return found, [
        Comparison("archiver events/s to S3", found.archiver_eps, "plain boto3 loop", found.plain_eps,
                   "events/s", floor=0.8, paired_ratio=found.ratio),
        Comparison(f"archiver RSS after {found.rss_events:,} event_ids", rss[-1] if rss else None,
                   "after the first tenth", rss[0] if rss else None, "MB", max_ratio=1.25),
    ]  # fmt: skip


def _warm_up(ws: Workspace) -> float:
    """Records through the broker before any measurement, so the JIT has compiled its hot
    paths: otherwise whichever app comes first is measured against a slower broker.

    Both kinds of traffic: large batches (the consumers' pre-fill) and small produce requests
    of one or two records each, as the ingest apps make them. Bulk writes alone leave the
    small-request path cold: the broker then spent 1 to 1.6 ms of CPU per webhook for
    minutes (0.25 ms once warm), CPU a 2-core box takes from whichever app is measured."""
    started = time.perf_counter()
    topic = ws.broker.create_topic("bench-warmup")
    groups.prefill(ws.broker.bootstrap, topic, ws.cfg.warm_records, f"{ws.run_id}-warmup")
    groups.acked_one_by_one(ws.broker.bootstrap, topic, ws.cfg.warm_small_s, f"{ws.run_id}-warmup-small")
    return time.perf_counter() - started


def _side_servers(cfg: BenchConfig, home: Path, stack: contextlib.ExitStack) -> dict[str, dict[str, str]]:
    """Redis and the schema registry for the producer's variants, when they are in the run."""
    extra: dict[str, dict[str, str]] = {}
    if "hookstream_redis" in cfg.apps:
        from hookstream_dev.redis import LocalRedis

        redis = LocalRedis(home / "redis", port=free_port_block(1))
        redis.start()
        stack.callback(redis.stop)
        extra["hookstream_redis"] = {"HOOKSTREAM_REDIS_URL": redis.url}
    if "hookstream_registry" in cfg.apps:
        from hookstream_dev.registry import LocalRegistry

        registry = LocalRegistry(home / "registry", port=free_port_block(2))
        registry.start()
        stack.callback(registry.stop)
        extra["hookstream_registry"] = {"HOOKSTREAM_SCHEMA_REGISTRY_URL": registry.url}
    return extra


def _execute(run: Run, results: Results) -> None:
    cfg, ws = run.cfg, run.ws
    run.stage("broker warm-up", partial(_warm_up, ws))
    producer = cfg.producer_setting or WorkerSetting.of_producer()
    tried = TRIED_APPS if producer.is_gunicorn_class else (*TRIED_APPS, "flask_ceiling")
    if "workers" in cfg.stages and cfg.worker_setting is None:
        results.trials = run.stage("worker trials", partial(run.worker_trials, tried)) or []
    chosen = choose_settings(cfg, results.trials, producer)
    results.worker_choice = [
        WorkerChoice(app, s.label, why) for app, (s, why) in chosen.items() if app in cfg.apps
    ]
    for choice in results.worker_choice:
        run.log(f"{choice.app}: {choice.setting} ({choice.why})")
    if "ingest" in cfg.stages:
        results.runs = run.ingest({app: setting for app, (setting, _) in chosen.items()})
        results.summaries = [
            summarize_app([r for r in results.runs if r.app == app])
            for app in cfg.apps
            if any(r.app == app for r in results.runs)
        ]
        results.ingest = report.headline(results.summaries)
        results.comparisons = comparisons(results.summaries)
        redis_url = ws.app_extra_env.get("hookstream_redis", {}).get("HOOKSTREAM_REDIS_URL")
        measured = run.stage(
            "store latency", partial(store_latency.both, ws.tmp / "store", redis_url, STORE_CALLS)
        )
        if measured:
            results.extra.update((f"dedupe store: {m.store}", m) for m in measured)
            results.comparisons += _store_comparisons(measured)
    if "codec" in cfg.stages:
        framings = run.stage("codec", partial(codec, ws))
        if framings:
            results.extra["codec: own vs registry framing"] = framings[0]
            results.comparisons += framings[1]
    if "index" in cfg.stages:
        indexed = run.stage("index sink", partial(index, ws))
        if indexed:
            results.extra["index sink: indexer vs plain loops"] = indexed[0]
            results.comparisons += indexed[1]
    if "archive" in cfg.stages:
        archived = run.stage("archive sink", partial(archive, ws))
        if archived:
            results.extra["archive sink: archiver vs plain loop"] = archived[0]
            results.comparisons += archived[1]
    if "broker" in cfg.stages:
        hookstream_rps = results.ingest.hookstream_rps if results.ingest else None
        results.broker = run.stage("broker limit", partial(run.broker_limit, hookstream_rps))
    if "consumers" in cfg.stages:
        results.consumers = run.stage("consumers", run.consumers)
    if "e2e" in cfg.stages:
        results.end_to_end = run.stage("end to end", partial(groups.end_to_end, ws, producer))
    if "profile" in cfg.stages:
        results.profile = run.stage("profile", partial(profile_producer, ws, producer))
        results.endpoint_profile = run.stage(
            "endpoint profile", partial(profile_endpoint, ws, cfg.endpoint_requests)
        )


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    try:
        loadgen.vegeta_binary()
        java_binary()
    except Exception as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    # The broker and the apps run in sessions of their own: a terminated run must still stop them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()}
    config["worker_trials"] = [s.label for s in cfg.worker_trials]
    config["worker_setting"] = cfg.worker_setting.label if cfg.worker_setting else None
    results = Results(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mode="quick" if cfg.quick else "full",
        machine=machine.describe(launch.REPO),
        config=config,
    )
    with tempfile.TemporaryDirectory(prefix="hookstream-bench-") as tmp, contextlib.ExitStack() as stack:
        home = Path(tmp)
        broker = stack.enter_context(BenchBroker(home / "kafka"))
        ws = Workspace(cfg, broker, home, uuid.uuid4().hex[:8])
        run = Run(cfg, ws)
        run.log(f"broker on {broker.bootstrap}; {results.mode} run, stages {','.join(cfg.stages)}")
        extra = run.stage("side servers", partial(_side_servers, cfg, home, stack))
        run.ws = ws = replace(ws, app_extra_env=extra or {})
        if extra is None:  # without them, the variants cannot run
            cfg = run.cfg = replace(cfg, apps=tuple(a for a in cfg.apps if not a.startswith("hookstream_")))
            ws = run.ws = replace(ws, cfg=cfg)
        _execute(run, results)
        ingest = results.ingest or report.headline([])
        results.targets = report.targets(ingest, results.comparisons, results.consumers, results.end_to_end)
        results.failures = run.failures
        results.duration_s = round(time.monotonic() - run.started, 1)
        results.load_average_at_end = tuple(round(x, 2) for x in os.getloadavg())
        paths = report.write(results, cfg.out_dir)
    print(report.markdown(results).split("## Every round, step by step")[0])
    print("wrote " + ", ".join(str(p) for p in paths))
    return 1 if run.failures else 0
