"""What one `make bench` run does: rates, durations and sizes, from flags and BENCH_* variables.

Flags win over the environment, so `make bench BENCH_QUICK=1` and `python -m bench --quick`
are the same run. Quick mode keeps every stage, every app and the interleaved rounds, with
fewer and shorter steps: the same comparisons, so it reaches the same verdicts, less precisely.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STAGES = ("workers", "ingest", "codec", "index", "archive", "broker", "consumers", "e2e", "profile")
# The headline apps, then the producer's variants (the same producer with Redis dedupe, with
# the registry's framing), each compared with the plain producer of the same rounds.
HEADLINE_APPS = ("hookstream", "baseline", "peer", "flask_ceiling", "wsgi_ceiling")
INGEST_APPS = (*HEADLINE_APPS, "hookstream_redis", "hookstream_registry")
GUNICORN_CLASSES = ("sync", "gthread", "gevent")

# A rate the producer answers with CPU to spare on 2 cores (its open rate is about 1,100 to
# 1,400 req/s here; at 1000 req/s its p99 is queueing): latencies of its variants compare there.
HEADROOM_RATE = 500


def _gunicorn_base(dotted: str) -> str:
    """The gunicorn class a worker class given as a dotted path extends (the producer's is
    gevent's, with its own graceful stop), else the path's last part."""
    from gunicorn.util import load_class
    from gunicorn.workers.ggevent import GeventWorker
    from gunicorn.workers.gthread import ThreadWorker
    from gunicorn.workers.sync import SyncWorker

    loaded = load_class(dotted)
    bases = {"gevent": GeventWorker, "gthread": ThreadWorker, "sync": SyncWorker}
    return next((name for name, base in bases.items() if issubclass(loaded, base)), dotted.rsplit(".", 1)[-1])


@dataclass(frozen=True)
class WorkerSetting:
    """A worker class and size: `gthread:16@2` is 2 gthread workers of 16 threads.

    The producer's comes from `producer.gunicorn_conf` (what ships); the peer's is fixed
    (uvicorn with 2 workers); the baseline's and the WSGI ceiling's are each chosen by trials.
    """

    worker_class: str
    workers: int
    threads: int = 1

    @classmethod
    def parse(cls, text: str) -> WorkerSetting:
        spec, _, workers = text.partition("@")
        worker_class, _, threads = spec.partition(":")
        if worker_class not in GUNICORN_CLASSES:
            raise ValueError(f"worker setting {text!r}: class must be sync, gthread or gevent")
        return cls(worker_class, int(workers or 2), int(threads or 1))

    @classmethod
    def uvicorn(cls, workers: int) -> WorkerSetting:
        return cls("uvicorn", workers)

    @classmethod
    def of_producer(cls) -> WorkerSetting:
        """The producer's setting as `hookstream producer` runs it, from `producer.gunicorn_conf`;
        a worker class given as a dotted path is named by its last part."""
        from producer import gunicorn_conf

        worker_class = str(getattr(gunicorn_conf, "worker_class", "sync"))
        name = worker_class if worker_class in GUNICORN_CLASSES else _gunicorn_base(worker_class)
        workers = int(getattr(gunicorn_conf, "workers", 1))
        return cls(name, workers, int(getattr(gunicorn_conf, "threads", 1)))

    @property
    def is_gunicorn_class(self) -> bool:
        """A class a plain WSGI app can run under (the Flask ceiling beside the producer)."""
        return self.worker_class in GUNICORN_CLASSES

    @property
    def label(self) -> str:
        threads = f":{self.threads}" if self.worker_class == "gthread" else ""
        return f"{self.worker_class}{threads}@{self.workers}"


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    stages: tuple[str, ...]
    apps: tuple[str, ...]
    rounds: int  # the apps run interleaved, A B C A B C ..., this many times
    rates: tuple[int, ...]  # offered req/s steps of the Kafka apps; the open-throttle step always follows
    step_s: float
    warmup_s: float
    connections: int  # the open step's concurrency
    max_in_flight: int  # at an offered rate: more connections are opened up to this many
    timeout_s: float
    worker_trials: tuple[WorkerSetting, ...]  # for the baseline and the WSGI ceiling, each picks its best
    trial_s: float
    worker_setting: WorkerSetting | None  # for the baseline and the WSGI ceiling; None: each one's winner
    producer_setting: WorkerSetting | None  # for the producer and the Flask ceiling; None: gunicorn_conf's
    open_max_rps: int  # sizes the open step's file of distinct pre-signed requests
    warm_records: int  # written before anything is measured: a cold broker JVM is several times slower
    warm_small_s: float  # then this long of one-record produce requests (the webhooks' kind)
    perf_records: int
    prefill_events: int
    group_cap_s: float  # a consumer slower than prefill_events in this time is measured over it
    e2e_rate: int
    e2e_s: float
    profile_s: float
    endpoint_requests: int  # sequential in-process requests under cProfile
    index_events: int  # events through the indexer and its plain loop, per round
    archive_events: int  # events through the archiver and its plain loop, per round
    # A round is a few seconds a side, and rounds differ by 10% on this box: seven make a median.
    archive_rounds: int
    archive_rss_events: int  # event_ids through one archiver while its RSS is sampled
    codec_records: int
    out_dir: Path
    hookstream_env: tuple[tuple[str, str], ...]  # extra variables for the producer, to try a tuning

    @property
    def steps(self) -> tuple[int, ...]:
        """Offered rates in order; 0 is the open throttle (as fast as the server answers)."""
        return (*self.rates, 0)

    def steps_of(self, app: str) -> tuple[int, ...]:
        """The ceilings answer without Kafka: only their open step means anything. The
        producer's variants are compared with it at 1000 req/s and open, and at the headroom
        rate, which the producer itself runs in quick mode too."""
        if app.endswith("_ceiling"):
            return (0,)
        if app.startswith("hookstream_"):
            return (HEADROOM_RATE, 1000, 0)
        if app == "hookstream":
            return (*sorted({*self.rates, HEADROOM_RATE}), 0)
        return self.steps


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=None, help="short smoke run (BENCH_QUICK=1)")
    parser.add_argument("--only", help=f"comma-separated stages (BENCH_ONLY), from: {','.join(STAGES)}")
    parser.add_argument("--apps", help=f"comma-separated ingest apps (BENCH_APPS): {','.join(INGEST_APPS)}")
    parser.add_argument("--rates", help="offered req/s steps, e.g. 250,500,1000,2000 (BENCH_RATES)")
    parser.add_argument("--step-s", type=float, help="seconds per step (BENCH_STEP_S)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the ingest apps (BENCH_ROUNDS)")
    parser.add_argument(
        "--workers",
        help="skip the gunicorn trials: this setting for the baseline and WSGI ceiling, e.g. gthread:16@2",
    )
    parser.add_argument(
        "--producer-setting",
        help="the producer and the Flask ceiling under this setting, not gunicorn_conf's, e.g. gevent@2",
    )
    parser.add_argument("--out", type=Path, help="report folder (BENCH_OUT)")
    return parser


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else None


def _pairs(text: str) -> list[tuple[str, str]]:
    """`A=1 B=2` -> [("A", "1"), ("B", "2")]."""
    pairs = [item.partition("=") for item in text.split()]
    bad = [name for name, sep, _ in pairs if not sep or not name]
    if bad:
        raise SystemExit(f"bench: BENCH_HOOKSTREAM_ENV wants NAME=VALUE pairs separated by spaces, got {bad}")
    return [(name, value) for name, _, value in pairs]


def _check(names: tuple[str, ...], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise SystemExit(f"bench: unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return names


def load_config(argv: Sequence[str], env: Mapping[str, str]) -> BenchConfig:
    args = _parser().parse_args(argv)
    quick = args.quick if args.quick is not None else env.get("BENCH_QUICK", "") not in ("", "0")

    def pick(flag: object, name: str, full: str, short: str) -> str:
        return str(flag) if flag is not None else env.get(name) or (short if quick else full)

    # the same settings in quick mode: the baseline's winner decides a headline ratio
    everything = "sync@2,gthread:8@2,gthread:32@2,gevent@2,gthread:16@4"
    trials = pick(None, "BENCH_WORKER_TRIALS", everything, everything)
    chosen = args.workers or env.get("BENCH_WORKERS")
    producer = args.producer_setting or env.get("BENCH_PRODUCER_SETTING")
    return BenchConfig(
        quick=quick,
        stages=_check(_csv(args.only or env.get("BENCH_ONLY")) or STAGES, STAGES, "stage"),
        apps=_check(_csv(args.apps or env.get("BENCH_APPS")) or INGEST_APPS, INGEST_APPS, "app"),
        rounds=int(pick(args.rounds, "BENCH_ROUNDS", "3", "3")),
        rates=tuple(int(r) for r in _csv(pick(args.rates, "BENCH_RATES", "250,500,1000,2000", "1000")) or ()),
        step_s=float(pick(args.step_s, "BENCH_STEP_S", "10", "4")),
        warmup_s=float(pick(None, "BENCH_WARMUP_S", "3", "1")),
        connections=int(pick(None, "BENCH_CONNECTIONS", "64", "64")),
        max_in_flight=int(pick(None, "BENCH_MAX_IN_FLIGHT", "1000", "1000")),
        timeout_s=float(pick(None, "BENCH_TIMEOUT_S", "5", "5")),
        worker_trials=tuple(WorkerSetting.parse(t) for t in _csv(trials) or ()),
        trial_s=float(pick(None, "BENCH_TRIAL_S", "6", "3")),
        worker_setting=WorkerSetting.parse(chosen) if chosen else None,
        producer_setting=WorkerSetting.parse(producer) if producer else None,
        open_max_rps=int(pick(None, "BENCH_OPEN_MAX_RPS", "12000", "12000")),
        warm_records=int(pick(None, "BENCH_WARM_RECORDS", "100000", "30000")),
        warm_small_s=float(pick(None, "BENCH_WARM_SMALL_S", "90", "60")),
        perf_records=int(pick(None, "BENCH_PERF_RECORDS", "1000000", "100000")),
        prefill_events=int(pick(None, "BENCH_PREFILL", "200000", "50000")),
        group_cap_s=float(pick(None, "BENCH_GROUP_CAP_S", "60", "15")),
        e2e_rate=int(pick(None, "BENCH_E2E_RATE", "1000", "1000")),
        e2e_s=float(pick(None, "BENCH_E2E_S", "20", "5")),
        profile_s=float(pick(None, "BENCH_PROFILE_S", "15", "5")),
        endpoint_requests=int(pick(None, "BENCH_ENDPOINT_REQUESTS", "3000", "1000")),
        index_events=int(pick(None, "BENCH_INDEX_EVENTS", "50000", "10000")),
        archive_events=int(pick(None, "BENCH_ARCHIVE_EVENTS", "100000", "10000")),
        archive_rounds=int(pick(None, "BENCH_ARCHIVE_ROUNDS", "7", "3")),
        archive_rss_events=int(pick(None, "BENCH_ARCHIVE_RSS_EVENTS", "1000000", "100000")),
        codec_records=int(pick(None, "BENCH_CODEC_RECORDS", "200000", "20000")),
        out_dir=args.out or Path(pick(None, "BENCH_OUT", "docs/benchmarks", "build/bench")),
        hookstream_env=tuple(_pairs(env.get("BENCH_HOOKSTREAM_ENV", ""))),
    )
