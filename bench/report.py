"""Turn one run's measurements into results.json, results.md and latency.png.

`summarize` is pure (measurements in, headline numbers and target verdicts out), so the
report's shape is checked by a unit test without running anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STEP_LABEL_OPEN = "open"


def _step(app: dict[str, Any] | None, rate: int) -> dict[str, Any] | None:
    for step in (app or {}).get("steps", []):
        if step["offered_rps"] == rate:
            return dict(step)
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _errors(app: dict[str, Any] | None) -> int | None:
    return sum(step["errors"] for step in app["steps"]) if app and app.get("steps") else None


def ingest_summary(apps: dict[str, Any]) -> dict[str, Any]:
    """The headline: peak acked req/s of each app over every step, and their ratios."""

    def peak(name: str) -> float | None:
        app = apps.get(name)
        return app["peak_acked_rps"] if app and "peak_acked_rps" in app else None

    def p99_at_1000(name: str) -> float | None:
        step = _step(apps.get(name), 1000)
        return step["latency_ms"]["p99"] if step else None

    ceilings = [v for v in (peak("flask_ceiling"), peak("wsgi_ceiling")) if v is not None]
    ceiling = max(ceilings) if ceilings else None
    hookstream = peak("hookstream")
    return {
        "hookstream_rps": hookstream,
        "baseline_rps": peak("baseline"),
        "peer_rps": peak("peer"),
        "ceiling_rps": ceiling,
        "flask_ceiling_rps": peak("flask_ceiling"),
        "wsgi_ceiling_rps": peak("wsgi_ceiling"),
        "ratio_vs_baseline": _ratio(hookstream, peak("baseline")),
        "ratio_vs_peer": _ratio(hookstream, peak("peer")),
        "fraction_of_ceiling": _ratio(hookstream, ceiling),
        "p99_ms_at_1000": p99_at_1000("hookstream"),
        "baseline_p99_ms_at_1000": p99_at_1000("baseline"),
        "peer_p99_ms_at_1000": p99_at_1000("peer"),
        "errors": {name: _errors(apps.get(name)) for name in ("hookstream", "baseline", "peer")},
    }


def _verdict(name: str, value: Any, met: bool | None) -> dict[str, Any]:
    return {"target": name, "value": value, "met": met}


def targets(ingest: dict[str, Any], consumers: dict[str, Any], e2e: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets; `met` is None where this run did not measure the number."""

    def at_least(value: float | None, floor: float) -> bool | None:
        return None if value is None else value >= floor

    def at_most(value: float | None, ceiling: float) -> bool | None:
        return None if value is None else value <= ceiling

    errors = ingest["errors"]
    others = [errors[n] for n in ("baseline", "peer") if errors.get(n) is not None]
    no_more_errors = (
        None if errors.get("hookstream") is None or not others else errors["hookstream"] <= min(others)
    )
    found = [
        _verdict(
            "hookstream >= 2x baseline (acked req/s)",
            ingest["ratio_vs_baseline"],
            at_least(ingest["ratio_vs_baseline"], 2.0),
        ),
        _verdict(
            "hookstream >= 1.0x peer (acked req/s)",
            ingest["ratio_vs_peer"],
            at_least(ingest["ratio_vs_peer"], 1.0),
        ),
        _verdict("hookstream errors <= baseline's and peer's", errors, no_more_errors),
        _verdict(
            "p99 <= 50 ms at 1000 req/s", ingest["p99_ms_at_1000"], at_most(ingest["p99_ms_at_1000"], 50.0)
        ),
    ]
    for group, result in consumers.get("groups", {}).items():
        fraction = result.get("fraction_of_raw")
        found.append(_verdict(f"{group} >= 70% of the raw poll loop", fraction, at_least(fraction, 0.7)))
    found.append(
        _verdict(
            "end-to-end p99 <= 1 s at 1000 req/s (ms)", e2e.get("p99_ms"), at_most(e2e.get("p99_ms"), 1000.0)
        )
    )
    return found


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Add the `ingest` headline and the target verdicts to the raw measurements."""
    ingest = ingest_summary(results.get("apps", {}))
    return {
        **results,
        "ingest": ingest,
        "targets": targets(ingest, results.get("consumers", {}), results.get("end_to_end", {})),
    }


# -- writing ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


BROKER_FIELDS = (
    "record_size",
    "records",
    "records_per_s",
    "mb_per_s",
    "p50_ms",
    "p99_ms",
    "times_hookstream",
)


def _pick(source: dict[str, Any], *keys: str) -> list[Any]:
    """One table row: these fields of a result, None where a stage did not report one."""
    return [source.get(key) for key in keys]


def markdown(report: dict[str, Any]) -> str:
    machine, ingest = report["machine"], report["ingest"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    out = [
        "# Hookstream benchmark results",
        "",
        f"Run {report['started_at']} ({report['mode']} mode, {report['duration_s']:.0f} s); "
        f"{machine['cores']} cores ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}, load average at start {machine['load_average_at_start']}, "
        f"at the end {report.get('load_average_at_end', '—')}; "
        f"commit {machine['git_commit']}.",
        "",
        f"Versions: {versions}.",
        "",
        "Method, knobs and caveats: [README.md](README.md). Raw numbers: [results.json](results.json).",
        "",
        "## Headline (acked req/s: the best step of each app)",
        "",
    ]
    out += _table(
        ["hookstream", "baseline", "peer", "ceiling", "x baseline", "x peer", "of ceiling", "p99 ms @1000"],
        [
            [
                ingest["hookstream_rps"],
                ingest["baseline_rps"],
                ingest["peer_rps"],
                ingest["ceiling_rps"],
                ingest["ratio_vs_baseline"],
                ingest["ratio_vs_peer"],
                ingest["fraction_of_ceiling"],
                ingest["p99_ms_at_1000"],
            ]
        ],
    )
    out += ["## Targets", ""]
    out += _table(
        ["target", "measured", "met"],
        [
            [
                t["target"],
                json.dumps(t["value"]) if isinstance(t["value"], dict) else t["value"],
                {True: "yes", False: "**no**", None: "not measured"}[t["met"]],
            ]
            for t in report["targets"]
        ],
    )
    out += _missed(report)
    out += ["## Ingest, step by step", ""]
    header = "app workers offered acked/s p50_ms p95_ms p99_ms max_ms non-2xx socket_errors"
    header += " cores_app/broker/wrk CPU_ms/req_app/broker"
    rows = []
    for name, app in report.get("apps", {}).items():
        if "error" in app:
            rows.append([name, app.get("setting"), "failed: " + app["error"], *[None] * 9])
            continue
        for s in app["steps"]:
            lat, cores, cost = s["latency_ms"], s.get("cores_busy", {}), s.get("cpu_ms_per_acked_request", {})
            busy = "/".join(_fmt(cores.get(k)) for k in ("app", "broker", "wrk"))
            per_request = "/".join(_fmt(cost.get(k)) for k in ("app", "broker"))
            offered = s["offered_rps"] or STEP_LABEL_OPEN
            errors = s["socket_errors"] + s["timeouts"]
            rows.append([name, app["setting"], offered, s["acked_rps"], lat["p50"], lat["p95"], lat["p99"],
                         lat["max"], s["non_2xx"], errors, busy, per_request])  # fmt: skip
    out += _table([h.replace("_", " ") for h in header.split()], rows)
    out += _sections(report)
    return "\n".join(out)


def _ingest_bottleneck(report: dict[str, Any]) -> list[str]:
    """Where Hookstream's ingest ran out: the cores at its best step, against the ceiling and
    the peer, and what py-spy saw."""
    apps, ingest, cores = report.get("apps", {}), report["ingest"], report["machine"]["cores"]
    hookstream = apps.get("hookstream", {})
    best = max(hookstream.get("steps", []), key=lambda s: s["acked_rps"], default=None)
    if best is None:
        return []
    busy, cost = best.get("cores_busy", {}), best.get("cpu_ms_per_acked_request", {})
    total = sum(v for v in busy.values() if v is not None)
    line = (
        f"- Ingest: at its best step ({best['offered_rps'] or 'open'}) Hookstream acked "
        f"{_fmt(best['acked_rps'])} req/s while the producer kept {_fmt(busy.get('app'))} cores busy, "
        f"the broker {_fmt(busy.get('broker'))} and wrk {_fmt(busy.get('wrk'))}: {_fmt(total)} of "
        f"{cores} cores"
    )
    connections = report.get("config", {}).get("connections")
    if total >= 0.85 * cores:
        line += ", so the machine itself was the limit: more throughput needs less CPU per request"
    elif connections and best["acked_rps"]:
        # Little's law: with every connection busy, each request took connections / rate.
        line += (
            f", so CPU was not the limit: {connections} connections at {_fmt(best['acked_rps'])} req/s "
            f"means each request spent {_fmt(1000 * connections / best['acked_rps'])} ms in flight "
            f"(p50 {_fmt(best['latency_ms']['p50'])} ms), mostly waiting for Kafka's ack"
        )
    line += (
        f". Each acked request cost {_fmt(cost.get('app'))} ms of producer CPU and "
        f"{_fmt(cost.get('broker'))} ms of broker CPU"
    )
    peer = max(apps.get("peer", {}).get("steps", []), key=lambda s: s["acked_rps"], default=None)
    if peer:
        peer_cost = peer.get("cpu_ms_per_acked_request", {})
        line += (
            f" (the peer: {_fmt(peer_cost.get('app'))} ms and {_fmt(peer_cost.get('broker'))} ms "
            f"at {_fmt(peer['acked_rps'])} req/s)"
        )
    line += f"; the better framework ceiling, without Kafka, answered {_fmt(ingest['ceiling_rps'])} req/s."
    parts = report.get("profile", {}).get("parts", [])[:4]
    if parts:
        line += (
            " py-spy charged the producer's samples to "
            + ", ".join(f"{p['name']} {p['pct']}%" for p in parts)
            + "."
        )
    return [line]


def _group_bottleneck(report: dict[str, Any], group: str) -> str:
    consumers = report.get("consumers", {})
    raw = consumers.get("raw_poll_loop", {}).get("events_per_s")
    decoding = consumers.get("raw_poll_loop_decoding", {}).get("events_per_s")
    result = consumers.get("groups", {}).get(group, {})
    line = (
        f"- Consumer {group}: {_fmt(result.get('events_per_s'))} events/s against the raw loop's "
        f"{_fmt(raw)} ({_fmt(result.get('fraction_of_raw'))})"
    )
    if raw and decoding:
        line += (
            f"; the raw loop that only decodes the Avro envelope already drops to {_fmt(decoding)} "
            f"({_fmt(decoding / raw)}), the rest is the group's own handling"
        )
    return line + "."


def _missed(report: dict[str, Any]) -> list[str]:
    """For each missed target: the bottleneck the numbers point at, and what was tried."""
    missed = [t["target"] for t in report.get("targets", []) if t["met"] is False]
    if not missed:
        return []
    out = ["## Targets missed: the bottleneck, and what was tried", ""]
    out += [f"Missed: {'; '.join(missed)}.", ""]
    if any(name.startswith(("hookstream", "p99")) for name in missed):
        out += _ingest_bottleneck(report)
    for group in report.get("consumers", {}).get("groups", {}):
        if f"{group} >= 70% of the raw poll loop" in missed:
            out.append(_group_bottleneck(report, group))
    e2e = report.get("end_to_end", {})
    if any(name.startswith("end-to-end") for name in missed):
        out.append(
            f"- End to end: p50 {_fmt(e2e.get('p50_ms'))} ms, p99 {_fmt(e2e.get('p99_ms'))} ms at "
            f"{_fmt(e2e.get('acked_rps'))} acked req/s; the indexer caught up: {e2e.get('caught_up')}."
        )
    out.append("")
    tried = report.get("what_was_tried")
    if tried:
        out += ["What was tried so far (from docs/benchmarks/what-was-tried.md):", "", tried.strip(), ""]
    return out


def _sections(report: dict[str, Any]) -> list[str]:
    out: list[str] = []
    choice = report.get("worker_choice", {})
    if choice:
        out += [
            "## Worker settings (open-throttle trials)",
            "",
            "The gunicorn apps (baseline, ceilings) were each tried under every gunicorn worker class "
            "and size and run under their own best; Hookstream's worker class is fixed (gunicorn with "
            "its uvicorn worker), so only its worker count was tried. Each won on acked req/s without "
            "errors:",
            "",
        ]
        out += [f"- **{app}: {c['setting']}**: {c['why']}." for app, c in choice.items()] + [""]
    trials = report.get("worker_trials", [])
    if trials:
        out += _table(
            ["app", "setting", "acked/s", "p99 ms", "errors", "cores busy", "CPU ms/req"],
            [
                [
                    t["app"],
                    t["setting"],
                    t.get("acked_rps"),
                    t.get("p99_ms"),
                    t.get("errors", t.get("error")),
                    t.get("cores_app"),
                    t.get("cpu_ms_per_request"),
                ]
                for t in trials
            ],
        )
    broker = report.get("broker", {})
    if broker:
        out += ["## Broker limit (Kafka ProducerPerformance, acks=all)", ""]
        out += _table(
            ["record bytes", "records", "records/s", "MB/s", "p50 ms", "p99 ms", "vs hookstream"],
            [_pick(broker, *BROKER_FIELDS)],
        )
    consumers = report.get("consumers", {})
    if consumers:
        raw = consumers.get("raw_poll_loop", {})
        out += [
            "## Consumers (pre-filled topic)",
            "",
            f"{consumers.get('prefill_events')} events pre-filled.",
            "",
        ]
        decoding = consumers.get("raw_poll_loop_decoding", {})
        rows = [
            ["raw poll loop", raw.get("events_per_s"), 1.0, raw.get("peak_rss_mb"), None],
            [
                "raw poll loop + Avro decode",
                decoding.get("events_per_s"),
                None,
                decoding.get("peak_rss_mb"),
                None,
            ],
        ]
        rows += [
            [g, r.get("events_per_s"), r.get("fraction_of_raw"), r.get("peak_rss_mb"), r.get("dead_lettered")]
            for g, r in consumers.get("groups", {}).items()
        ]
        out += _table(["consumer", "events/s", "of raw", "peak RSS MB", "dead-lettered"], rows)
    e2e = report.get("end_to_end", {})
    if e2e:
        out += ["## End to end (webhook -> indexed)", ""]
        out += _table(
            ["offered/s", "acked/s", "indexed", "p50 ms", "p99 ms"],
            [_pick(e2e, "offered_rps", "acked_rps", "indexed", "p50_ms", "p99_ms")],
        )
    memory = report.get("memory", {})
    if memory:
        out += ["## Peak memory (VmHWM, MB)", ""]
        out += _table(
            ["process", "peak RSS MB per process"],
            [[name, ", ".join(str(v) for v in values)] for name, values in memory.items()],
        )
    prof = report.get("profile", {})
    if prof.get("parts"):
        out += [
            "## Where the producer's time goes (py-spy --gil, % of samples)",
            "",
            f"{prof['samples']} samples at {prof.get('acked_rps_while_sampled')} acked req/s. Each sample is "
            "charged to the outermost part of the code it was in (see bench/profile.py).",
            "",
        ]
        out += _table(["part of the code", "%"], [[c["name"], c["pct"]] for c in prof["parts"]])
        out += _table(["function (self)", "%"], [[c["name"], c["pct"]] for c in prof["self"]])
    endpoint = prof.get("endpoint", {})
    if endpoint.get("top_own_time"):
        out += [
            "### The event loop's own CPU, in-process under cProfile (no HTTP server)",
            "",
            f"{endpoint['requests']} sequential requests through the ASGI app on uvloop, "
            f"{endpoint['wall_ms_per_request']} ms wall each (mostly the ack wait); the loop's thread "
            f"spent {endpoint.get('loop_cpu_ms_per_request')} ms CPU per request without the profiler, "
            f"{endpoint['profiled_cpu_ms_per_request']} ms under it.",
            "",
        ]
        for title, key in (("file", "own_time_by_file"), ("function", "top_own_time")):
            rows = [[t["name"], t["pct"]] for t in endpoint.get(key, [])]
            out += _table([f"{title} (own time, waits excluded)", "%"], rows)
    failures = report.get("failures", {})
    if failures:
        out += ["## Stages that failed", ""] + [f"- {stage}: {err}" for stage, err in failures.items()] + [""]
    out += ["![latency vs offered rate](latency.png)", ""]
    return out


def chart(report: dict[str, Any], path: Path) -> None:
    """Latency percentiles (left) and acked req/s (right) against offered rate: Hookstream,
    the baseline and the peer on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, acked) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    colors = {"hookstream": "tab:blue", "baseline": "tab:red", "peer": "tab:green"}
    styles = {"p50": "-", "p95": "--", "p99": ":"}
    for name, color in colors.items():
        app = report.get("apps", {}).get(name)
        if not app or not app.get("steps"):
            continue
        steps = app["steps"]
        labels = [str(s["offered_rps"] or STEP_LABEL_OPEN) for s in steps]
        for pct, style in styles.items():
            values = [s["latency_ms"][pct] for s in steps]
            latency.plot(labels, values, style, marker="o", color=color, label=f"{name} {pct}")
        acked.plot(labels, [s["acked_rps"] for s in steps], "-", marker="o", color=color, label=name)
    latency.set_yscale("log")
    latency.set_ylabel("latency, ms (log)")
    acked.set_ylabel("acked req/s")
    machine = report["machine"]
    fig.suptitle(f"Ingest vs offered rate ({machine['cores']} cores, acks=all, {report['mode']} run)")
    for ax in (latency, acked):
        ax.set_xlabel("offered req/s (open = as fast as answered)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(ncol=3 if ax is latency else 1, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "latency.png"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report))
    chart(report, paths[2])
    return paths
