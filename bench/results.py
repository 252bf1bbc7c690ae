"""What a run measured, as typed records: each stage returns these, the report only reads them.

`results.json` is `dataclasses.asdict` of a `Results`; nothing here computes a verdict or
writes prose (that is `bench.report` and `docs/benchmarks/README.md`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Latency:
    """Milliseconds. At an offered rate: from each request's intended send time (its slot in
    the schedule) to its answer, so time spent queued behind a slow answer counts."""

    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float


@dataclass(frozen=True)
class Step:
    """One load step against one app: `offered_rps` for `duration_s` (0: open throttle)."""

    offered_rps: int
    duration_s: float
    requests: int  # answered or failed, every request sent
    acked: int  # 2xx answers
    non_2xx: int
    socket_errors: int  # connect, read, write
    timeouts: int
    latency_ms: Latency
    service_p99_ms: float  # from the moment the request was sent: what coordinated omission hides
    cores_app: float  # CPU seconds per second of the app's processes during the step
    cores_broker: float
    cores_loadgen: float

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts

    @property
    def acked_rps(self) -> float:
        return self.acked / self.duration_s if self.duration_s else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        """The app's CPU per acked request."""
        return 1000 * self.cores_app / self.acked_rps if self.acked_rps else None

    @property
    def broker_cpu_ms_per_request(self) -> float | None:
        return 1000 * self.cores_broker / self.acked_rps if self.acked_rps else None


@dataclass(frozen=True)
class AppRun:
    """One app started, loaded at every step of one round, stopped."""

    app: str
    setting: str  # worker class and size, e.g. `gthread:16@2`
    round: int  # 0 for a worker trial
    steps: tuple[Step, ...]
    peak_rss_mb: tuple[float, ...]  # per worker process
    acked_total: int | None = None  # the Kafka apps: every 2xx promised a record ...
    topic_records: int | None = None  # ... and the topic holds this many

    @property
    def best(self) -> Step | None:
        """The step with the most acked req/s."""
        return max(self.steps, key=lambda s: s.acked_rps, default=None)

    def at(self, offered_rps: int) -> Step | None:
        return next((s for s in self.steps if s.offered_rps == offered_rps), None)

    @property
    def acked_but_missing(self) -> int | None:
        if self.acked_total is None or self.topic_records is None:
            return None
        return max(0, self.acked_total - self.topic_records)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.steps)


@dataclass(frozen=True)
class Spread:
    """A figure over the rounds: its median, the lowest and highest round."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread | None:
        found = [v for v in values if v is not None]
        if not found:
            return None
        return cls(round(statistics.median(found), 3), min(found), max(found), len(found))

    @property
    def relative(self) -> float:
        """(high - low) / median: how far apart the rounds were."""
        return (self.high - self.low) / self.median if self.median else 0.0


@dataclass(frozen=True)
class AppSummary:
    """One app over every round: the medians the headline quotes."""

    app: str
    setting: str
    acked_rps: Spread | None  # each round's best step
    p99_ms_at_1000: Spread | None
    p99_ms_at_500: Spread | None  # the headroom rate (`bench.config.HEADROOM_RATE`)
    cpu_ms_per_request: Spread | None  # at each round's best step
    cores_app: Spread | None  # at each round's best step
    errors: int
    acked_but_missing: int | None


@dataclass(frozen=True)
class Trial:
    """One open-throttle run of a gunicorn app under one worker setting."""

    app: str
    setting: str
    acked_rps: float | None
    p99_ms: float | None
    errors: int | None
    cores_app: float | None
    cpu_ms_per_request: float | None
    failure: str = ""


@dataclass(frozen=True)
class WorkerChoice:
    app: str
    setting: str
    why: str


@dataclass(frozen=True)
class Ingest:
    """The headline `results.json` names: medians over the rounds."""

    hookstream_rps: float | None
    baseline_rps: float | None
    peer_rps: float | None
    ceiling_rps: float | None  # the better of the two ceilings
    flask_ceiling_rps: float | None
    wsgi_ceiling_rps: float | None
    p99_ms_at_1000: float | None
    cpu_ms_per_request: float | None  # the producer's CPU per acked webhook at its best step
    ceiling_cpu_ms_per_request: float | None  # the Flask ceiling's, under the producer's worker class
    ratio_vs_baseline: float | None
    ratio_vs_peer: float | None
    fraction_of_ceiling: float | None
    cpu_vs_flask_ceiling: float | None
    errors: dict[str, int]


@dataclass(frozen=True)
class Verdict:
    target: str
    value: float | None
    met: bool | None  # None: not measured in this run


@dataclass(frozen=True)
class BrokerLimit:
    record_size: int
    records: int
    records_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    times_hookstream: float | None


@dataclass(frozen=True)
class LoopRate:
    """A consumer (raw poll loop or group member) over the pre-filled topic."""

    name: str
    events: int
    seconds: float | None
    events_per_s: float
    peak_rss_mb: float
    finished: bool = True
    dead_lettered: float | None = None
    fraction_of_raw: float | None = None


@dataclass(frozen=True)
class Consumers:
    prefill_events: int
    prefill_s: float
    raw: LoopRate
    raw_decoding: LoopRate
    groups: tuple[LoopRate, ...]


@dataclass(frozen=True)
class EndToEnd:
    offered_rps: int
    acked_rps: float
    indexed: int
    caught_up: bool
    p50_ms: float | None  # interpolated within the indexer's histogram buckets
    p99_ms: float | None


@dataclass(frozen=True)
class Share:
    name: str
    pct: float


@dataclass(frozen=True)
class Profile:
    """py-spy over the live producer under open throttle."""

    setting: str
    acked_rps: float | None
    samples: int
    parts: tuple[Share, ...]
    self_time: tuple[Share, ...]


@dataclass(frozen=True)
class EndpointProfile:
    """The producer's app called in-process, one request after another, under cProfile."""

    requests: int
    ok: int
    wall_ms_per_request: float
    cpu_ms_per_request: float  # without the profiler
    profiled_cpu_ms_per_request: float
    by_file: tuple[Share, ...]
    by_function: tuple[Share, ...]


@dataclass(frozen=True)
class Comparison:
    """A figure measured side by side with its reference in the same run, and its target:
    `floor` or `max_ratio` on the ratio (value / reference), or `ceiling` on the value itself."""

    name: str  # e.g. "producer with Redis dedupe, acked req/s"
    value: float | None
    reference_name: str  # e.g. "embedded (SQLite) dedupe"
    reference: float | None
    unit: str
    floor: float | None = None
    ceiling: float | None = None
    max_ratio: float | None = None
    paired_ratio: float | None = None  # the median of each round's ratio, where rounds paired the two

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        return round(self.value / self.reference, 3) if self.value is not None and self.reference else None


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_gib: float
    cpu_model: str
    kernel: str
    load_average_at_start: tuple[float, ...]
    git_commit: str
    versions: dict[str, str]


@dataclass
class Results:
    """Everything one run measured; filled stage by stage."""

    started_at: str
    mode: str
    machine: Machine
    config: dict[str, object]
    runs: list[AppRun] = field(default_factory=list)  # the interleaved rounds, in the order they ran
    summaries: list[AppSummary] = field(default_factory=list)
    ingest: Ingest | None = None
    trials: list[Trial] = field(default_factory=list)
    worker_choice: list[WorkerChoice] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)  # the sink and codec modules' own records
    broker: BrokerLimit | None = None
    consumers: Consumers | None = None
    end_to_end: EndToEnd | None = None
    profile: Profile | None = None
    endpoint_profile: EndpointProfile | None = None
    targets: list[Verdict] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    load_average_at_end: tuple[float, ...] = ()
