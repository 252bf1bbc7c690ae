"""Turn one run's records into results.json, results.md (tables only) and latency.png.

`headline` and `targets` are pure (records in, medians and verdicts out), so the report's
shape is checked by unit tests without running anything. What the figures mean, and what
was tried where a target is missed, is written by hand in docs/benchmarks/README.md.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.results import AppRun, AppSummary, Comparison, Consumers, EndToEnd, Ingest, Results, Share, Verdict

HEADLINE_APPS = ("hookstream", "baseline", "peer")
OPEN = "open"


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def headline(summaries: Sequence[AppSummary]) -> Ingest:
    """The `ingest` object: each app's median over the rounds of its best step."""
    by_app = {s.app: s for s in summaries}

    def rps(app: str) -> float | None:
        found = by_app.get(app)
        return found.acked_rps.median if found and found.acked_rps else None

    def median(app: str, figure: Callable[[AppSummary], Any]) -> float | None:
        found = by_app.get(app)
        spread = figure(found) if found else None
        return spread.median if spread else None

    ceilings = [v for v in (rps("flask_ceiling"), rps("wsgi_ceiling")) if v is not None]
    ceiling = max(ceilings) if ceilings else None
    cpu = median("hookstream", lambda s: s.cpu_ms_per_request)
    ceiling_cpu = median("flask_ceiling", lambda s: s.cpu_ms_per_request)
    return Ingest(
        hookstream_rps=rps("hookstream"),
        baseline_rps=rps("baseline"),
        peer_rps=rps("peer"),
        ceiling_rps=ceiling,
        flask_ceiling_rps=rps("flask_ceiling"),
        wsgi_ceiling_rps=rps("wsgi_ceiling"),
        p99_ms_at_1000=median("hookstream", lambda s: s.p99_ms_at_1000),
        cpu_ms_per_request=cpu,
        ceiling_cpu_ms_per_request=ceiling_cpu,
        ratio_vs_baseline=_ratio(rps("hookstream"), rps("baseline")),
        ratio_vs_peer=_ratio(rps("hookstream"), rps("peer")),
        fraction_of_ceiling=_ratio(rps("hookstream"), ceiling),
        cpu_vs_flask_ceiling=_ratio(cpu, ceiling_cpu),
        errors={s.app: s.errors for s in summaries},
    )


def _at_least(value: float | None, floor: float) -> bool | None:
    return None if value is None else value >= floor


def _at_most(value: float | None, ceiling: float) -> bool | None:
    return None if value is None else value <= ceiling


def targets(
    ingest: Ingest,
    comparisons: Sequence[Comparison],
    consumers: Consumers | None,
    e2e: EndToEnd | None,
) -> list[Verdict]:
    """The issues' targets; `met` is None where this run did not measure the figure."""
    errors = ingest.errors.get("hookstream")
    found = [
        Verdict(
            "hookstream >= 1.75x baseline (acked req/s)",
            ingest.ratio_vs_baseline,
            _at_least(ingest.ratio_vs_baseline, 1.75),
        ),
        Verdict(
            "hookstream CPU per webhook <= 1.5x the Flask ceiling's, same worker class",
            ingest.cpu_vs_flask_ceiling,
            _at_most(ingest.cpu_vs_flask_ceiling, 1.5),
        ),
        Verdict(
            "hookstream p99 <= 20 ms at 1000 req/s (ms)",
            ingest.p99_ms_at_1000,
            _at_most(ingest.p99_ms_at_1000, 20.0),
        ),
        Verdict("hookstream answered no errors", errors, None if errors is None else errors == 0),
    ]
    found += [
        Verdict(f"{c.name} >= {c.floor}x {c.reference_name}", c.ratio, _at_least(c.ratio, c.floor))
        for c in comparisons
        if c.floor is not None
    ]
    found += [
        Verdict(f"{c.name} <= {c.ceiling} {c.unit}", c.value, _at_most(c.value, c.ceiling))
        for c in comparisons
        if c.ceiling is not None
    ]
    found += [
        Verdict(f"{c.name} <= {c.max_ratio}x {c.reference_name}", c.ratio, _at_most(c.ratio, c.max_ratio))
        for c in comparisons
        if c.max_ratio is not None
    ]
    for group in consumers.groups if consumers else ():
        found.append(
            Verdict(
                f"{group.name} >= 70% of the raw poll loop",
                group.fraction_of_raw,
                _at_least(group.fraction_of_raw, 0.7),
            )
        )
    if e2e is not None:
        found.append(
            Verdict("end-to-end p99 <= 1 s at 1000 req/s (ms)", e2e.p99_ms, _at_most(e2e.p99_ms, 1000.0))
        )
    return found


# -- results.json ------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A record as JSON data: its fields and its computed properties (acked_rps, errors ...)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name, member in vars(type(value)).items():
            if isinstance(member, property):
                found[name] = plain(getattr(value, name))
        return found
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


# -- results.md -------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _range(spread: Any) -> str:
    return f"{_fmt(spread.low)} to {_fmt(spread.high)}" if spread else "—"


def _pct(spread: Any) -> str:
    return f"{spread.relative:.0%}" if spread else "—"


def _header(results: Results) -> list[str]:
    machine = results.machine
    versions = ", ".join(f"{k} {v}" for k, v in machine.versions.items())
    rounds = results.config.get("rounds")
    return [
        "# Hookstream benchmark results",
        "",
        f"Run {results.started_at} ({results.mode} mode, {results.duration_s:.0f} s, {rounds} interleaved "
        f"rounds); {machine.cores} cores ({machine.cpu_model}), {machine.memory_gib} GiB, Linux "
        f"{machine.kernel}; load average {list(machine.load_average_at_start)} at the start, "
        f"{list(results.load_average_at_end)} at the end; commit {machine.git_commit}.",
        "",
        f"Versions: {versions}.",
        "",
        "What the figures mean: [README.md](README.md). Raw records: [results.json](results.json).",
        "",
    ]


def _headline(ingest: Ingest) -> list[str]:
    out = ["## Headline (median over the rounds of each app's best step)", ""]
    out += _table(
        [
            "hookstream req/s",
            "baseline",
            "peer",
            "ceiling",
            "x baseline",
            "x peer",
            "of ceiling",
            "p99 ms @1000",
            "CPU ms/req",
            "Flask ceiling CPU ms/req",
            "CPU x ceiling",
        ],
        [
            [
                ingest.hookstream_rps,
                ingest.baseline_rps,
                ingest.peer_rps,
                ingest.ceiling_rps,
                ingest.ratio_vs_baseline,
                ingest.ratio_vs_peer,
                ingest.fraction_of_ceiling,
                ingest.p99_ms_at_1000,
                ingest.cpu_ms_per_request,
                ingest.ceiling_cpu_ms_per_request,
                ingest.cpu_vs_flask_ceiling,
            ]
        ],
    )
    return out


def _targets(verdicts: Sequence[Verdict]) -> list[str]:
    marks = {True: "yes", False: "**no**", None: "not measured"}
    return [
        "## Targets",
        "",
        *_table(["target", "measured", "met"], [[v.target, v.value, marks[v.met]] for v in verdicts]),
    ]


def _summaries(summaries: Sequence[AppSummary]) -> list[str]:
    if not summaries:
        return []
    out = ["## Each app over the rounds (median, lowest to highest round, spread)", ""]
    out += _table(
        [
            "app",
            "setting",
            "acked req/s",
            "range",
            "spread",
            "p99 ms @1000",
            "range",
            "CPU ms/req",
            "cores busy",
            "errors",
            "acked but missing",
        ],
        [
            [
                s.app,
                s.setting,
                s.acked_rps.median if s.acked_rps else None,
                _range(s.acked_rps),
                _pct(s.acked_rps),
                s.p99_ms_at_1000.median if s.p99_ms_at_1000 else None,
                _range(s.p99_ms_at_1000),
                s.cpu_ms_per_request.median if s.cpu_ms_per_request else None,
                s.cores_app.median if s.cores_app else None,
                s.errors,
                s.acked_but_missing,
            ]
            for s in summaries
        ],
    )
    return out


def _comparisons(comparisons: Sequence[Comparison]) -> list[str]:
    if not comparisons:
        return []
    out = ["## Side by side in the same run", ""]
    out += _table(
        ["figure", "value", "against", "reference", "ratio", "unit"],
        [[c.name, c.value, c.reference_name, c.reference, c.ratio, c.unit] for c in comparisons],
    )
    return out


def _steps(runs: Sequence[AppRun]) -> list[str]:
    if not runs:
        return []
    out = [
        "## Every round, step by step",
        "",
        "Latency at an offered rate is from each request's intended send time; `service p99` is from "
        "the moment it was sent.",
        "",
    ]
    rows = []
    for run in runs:
        for s in run.steps:
            lat = s.latency_ms
            rows.append(
                [
                    run.round,
                    run.app,
                    run.setting,
                    s.offered_rps or OPEN,
                    s.acked_rps,
                    lat.p50,
                    lat.p99,
                    lat.max,
                    s.service_p99_ms,
                    s.non_2xx,
                    s.socket_errors + s.timeouts,
                    f"{_fmt(s.cores_app)}/{_fmt(s.cores_broker)}/{_fmt(s.cores_loadgen)}",
                    f"{_fmt(s.cpu_ms_per_request)}/{_fmt(s.broker_cpu_ms_per_request)}",
                ]
            )
    out += _table(
        [
            "round",
            "app",
            "setting",
            "offered",
            "acked/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "service p99 ms",
            "non-2xx",
            "socket errors",
            "cores app/broker/loadgen",
            "CPU ms/req app/broker",
        ],
        rows,
    )
    return out


def _shares(title: str, shares: Sequence[Share]) -> list[str]:
    return _table([title, "%"], [[s.name, s.pct] for s in shares])


def _flat(data: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    """Nested records as `outer.inner` rows; lists as one cell."""
    rows: list[list[Any]] = []
    for name, value in data.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{name}.")
        else:
            rows.append([prefix + name, ", ".join(map(_fmt, value)) if isinstance(value, list) else value])
    return rows


def _record_table(title: str, record: object) -> list[str]:
    """A module's own typed result (index, archive, codec ...) as name/value rows."""
    return [f"### {title}", "", *_table(["figure", "value"], _flat(plain(record)))]


def _sections(results: Results) -> list[str]:
    out: list[str] = []
    if results.worker_choice:
        out += ["## Worker settings", ""]
        out += _table(
            ["app", "setting", "chosen by"], [[c.app, c.setting, c.why] for c in results.worker_choice]
        )
    if results.trials:
        out += _table(
            ["trial app", "setting", "acked/s", "p99 ms", "errors", "cores busy", "CPU ms/req", "failure"],
            [
                [
                    t.app,
                    t.setting,
                    t.acked_rps,
                    t.p99_ms,
                    t.errors,
                    t.cores_app,
                    t.cpu_ms_per_request,
                    t.failure,
                ]
                for t in results.trials
            ],
        )
    if results.extra:
        out += ["## Stores, sinks and codecs (each module's own record)", ""]
        for title, record in results.extra.items():
            out += _record_table(title, record)
    if results.broker:
        b = results.broker
        out += ["## Broker limit (Kafka ProducerPerformance, acks=all)", ""]
        out += _table(
            ["record bytes", "records", "records/s", "MB/s", "p50 ms", "p99 ms", "x hookstream"],
            [[b.record_size, b.records, b.records_per_s, b.mb_per_s, b.p50_ms, b.p99_ms, b.times_hookstream]],
        )
    if results.consumers:
        c = results.consumers
        out += ["## Consumers (pre-filled topic)", "", f"{c.prefill_events:,} events pre-filled.", ""]
        out += _table(
            ["consumer", "events/s", "of raw", "peak RSS MB", "dead-lettered", "finished"],
            [
                [r.name, r.events_per_s, r.fraction_of_raw, r.peak_rss_mb, r.dead_lettered, r.finished]
                for r in (c.raw, c.raw_decoding, *c.groups)
            ],
        )
    if results.end_to_end:
        e = results.end_to_end
        out += ["## End to end (webhook -> indexed)", ""]
        out += _table(
            ["offered/s", "acked/s", "indexed", "caught up", "p50 ms", "p99 ms"],
            [[e.offered_rps, e.acked_rps, e.indexed, e.caught_up, e.p50_ms, e.p99_ms]],
        )
    memory = [[run.app, run.round, ", ".join(str(v) for v in run.peak_rss_mb)] for run in results.runs]
    if memory:
        out += ["## Peak memory of each app's workers (RSS, MB, sampled)", ""]
        out += _table(["app", "round", "peak RSS MB per worker"], memory)
    if results.profile:
        p = results.profile
        out += [
            "## Where the producer's time goes (py-spy --gil, % of samples)",
            "",
            f"{p.samples} samples at {_fmt(p.acked_rps)} acked req/s ({p.setting}).",
            "",
        ]
        out += _shares("part of the code", p.parts) + _shares("function (self)", p.self_time)
    if results.endpoint_profile:
        e2 = results.endpoint_profile
        out += ["### The app in-process under cProfile (no HTTP server)", ""]
        out += _table(
            ["requests", "200s", "wall ms/req", "CPU ms/req", "CPU ms/req profiled"],
            [
                [
                    e2.requests,
                    e2.ok,
                    e2.wall_ms_per_request,
                    e2.cpu_ms_per_request,
                    e2.profiled_cpu_ms_per_request,
                ]
            ],
        )
        out += _shares("file (own time, waits excluded)", e2.by_file)
        out += _shares("function (own time, waits excluded)", e2.by_function)
    if results.failures:
        out += ["## Stages that failed", "", *_table(["stage", "error"], list(results.failures.items()))]
    return [*out, "![latency and acked req/s against offered rate](latency.png)", ""]


def markdown(results: Results) -> str:
    out = _header(results)
    if results.ingest:
        out += _headline(results.ingest)
    out += _targets(results.targets)
    out += _summaries(results.summaries)
    out += _comparisons(results.comparisons)
    out += _steps(results.runs)
    out += _sections(results)
    return "\n".join(out)


# -- latency.png ------------------------------------------------------------------------------


def step_medians(runs: Sequence[AppRun], app: str) -> list[tuple[int, float, float, float]]:
    """(offered rate, median p50, median p99, median acked req/s) over the rounds, in step order."""
    rates: list[int] = []
    for run in runs:
        rates += [s.offered_rps for s in run.steps if run.app == app and s.offered_rps not in rates]
    found = []
    for rate in rates:
        steps = [s for run in runs if run.app == app for s in run.steps if s.offered_rps == rate]
        found.append(
            (
                rate,
                statistics.median(s.latency_ms.p50 for s in steps),
                statistics.median(s.latency_ms.p99 for s in steps),
                statistics.median(s.acked_rps for s in steps),
            )
        )
    return found


def chart(results: Results, path: Path) -> None:
    """Latency (p50, p99) and acked req/s against offered rate, medians over the rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, acked) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    colors = {"hookstream": "tab:blue", "baseline": "tab:red", "peer": "tab:green"}
    for app, color in colors.items():
        medians = step_medians(results.runs, app)
        if not medians:
            continue
        labels = [str(rate or OPEN) for rate, *_ in medians]
        latency.plot(labels, [m[1] for m in medians], "-", marker="o", color=color, label=f"{app} p50")
        latency.plot(labels, [m[2] for m in medians], ":", marker="o", color=color, label=f"{app} p99")
        acked.plot(labels, [m[3] for m in medians], "-", marker="o", color=color, label=app)
    latency.set_yscale("log")
    latency.set_ylabel("latency from the intended send time, ms (log)")
    acked.set_ylabel("acked req/s")
    machine = results.machine
    fig.suptitle(f"Ingest vs offered rate ({machine.cores} cores, acks=all, {results.mode} run, medians)")
    for ax in (latency, acked):
        ax.set_xlabel("offered req/s (open = as fast as answered)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(ncol=3 if ax is latency else 1, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: Results, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "latency.png"]
    paths[0].write_text(json.dumps(plain(results), indent=2) + "\n")
    paths[1].write_text(markdown(results))
    chart(results, paths[2])
    return paths
