"""The report's shape: medians over interleaved rounds, the `ingest` object the issue names,
verdicts, and Markdown with tables and figures only."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench.ingest import interleaved, summarize_app
from bench.report import headline, markdown, plain, targets
from bench.results import (
    AppRun,
    Comparison,
    Consumers,
    EndToEnd,
    Latency,
    LoopRate,
    Machine,
    Results,
    Spread,
    Step,
)
from bench.run import comparisons


def _step(offered: int, acked_rps: float, p99: float, cores: float = 1.0, errors: int = 0) -> Step:
    return Step(
        offered_rps=offered,
        duration_s=10.0,
        requests=int(acked_rps * 10) + errors,
        acked=int(acked_rps * 10),
        non_2xx=errors,
        socket_errors=0,
        timeouts=0,
        latency_ms=Latency(p50=2.0, p90=3.0, p95=4.0, p99=p99, max=2 * p99, mean=2.5),
        service_p99_ms=p99 / 2,
        cores_app=cores,
        cores_broker=0.3,
        cores_loadgen=0.1,
    )


def _runs(app: str, best: list[float], p99: list[float], cores: float = 1.2) -> list[AppRun]:
    """One run per round: a 1000 req/s step and an open step acking `best[i]` req/s."""
    return [
        AppRun(
            app,
            "gthread:32@2",
            i + 1,
            (_step(1000, 1000.0, p99[i]), _step(0, rps, 60.0, cores)),
            (80.0,),
            10,
            10,
        )
        for i, rps in enumerate(best)
    ]


def _results() -> Results:
    runs = [
        *_runs("hookstream", [4000.0, 3000.0, 3800.0], [20.0, 15.0, 25.0], cores=1.2),
        *_runs("baseline", [1000.0, 1100.0, 900.0], [90.0, 95.0, 80.0]),
        *_runs("peer", [5000.0, 4800.0, 5100.0], [30.0, 30.0, 30.0]),
        *_runs("flask_ceiling", [3000.0, 3000.0, 3000.0], [0.0] * 3, cores=1.8),
        *_runs("wsgi_ceiling", [8000.0, 7000.0, 9000.0], [0.0] * 3),
    ]
    summaries = [
        summarize_app([r for r in runs if r.app == app]) for app in dict.fromkeys(r.app for r in runs)
    ]
    machine = Machine(2, 24.0, "x", "6", (0.1, 0.2, 0.3), "abc1234", {"python": "3.11"})
    results = Results(
        "2026-01-01T00:00:00+00:00", "quick", machine, {"rounds": 3}, runs=runs, summaries=summaries
    )
    results.ingest = headline(summaries)
    return results


def test_apps_run_interleaved_round_after_round() -> None:
    order = list(interleaved(("a", "b", "c"), 3))
    assert [app for _, app in order] == ["a", "b", "c"] * 3
    assert [r for r, _ in order] == [1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_each_app_is_its_median_over_the_rounds_with_the_spread() -> None:
    hookstream = summarize_app([r for r in _results().runs if r.app == "hookstream"])
    assert hookstream.acked_rps == Spread(3800.0, 3000.0, 4000.0, 3)
    assert hookstream.acked_rps.relative == pytest.approx(1000 / 3800)
    assert hookstream.p99_ms_at_1000 == Spread(20.0, 15.0, 25.0, 3)
    assert hookstream.cpu_ms_per_request == Spread(0.316, 0.3, 0.4, 3)  # 1.2 cores at each round's best
    assert hookstream.errors == 0 and hookstream.acked_but_missing == 0


def test_redis_dedupe_is_compared_with_the_plain_producer_at_1000_req_s_and_with_headroom() -> None:
    def at_500(runs: list[AppRun], p99: list[float]) -> list[AppRun]:
        return [
            dataclasses.replace(r, steps=(_step(500, 500.0, p99[i]), *r.steps)) for i, r in enumerate(runs)
        ]

    plain_runs = at_500(
        _runs("hookstream", [1200.0, 1100.0, 1300.0], [200.0, 300.0, 250.0]), [10.0, 12.0, 11.0]
    )
    redis_runs = at_500(
        _runs("hookstream_redis", [1150.0, 1000.0, 1200.0], [310.0, 280.0, 400.0]), [12.0, 13.0, 9.0]
    )
    found = {c.name: c for c in comparisons([summarize_app(plain_runs), summarize_app(redis_runs)])}
    rps = found["producer with Redis dedupe, acked req/s"]
    assert (rps.value, rps.reference, rps.floor) == (1150.0, 1200.0, 0.9)
    at_1000 = found["producer with Redis dedupe, p99 at 1000 req/s"]
    assert (at_1000.value, at_1000.reference, at_1000.ceiling) == (310.0, 250.0, 20.0)
    headroom = found["producer with Redis dedupe, p99 at 500 req/s"]
    assert (headroom.value, headroom.reference) == (12.0, 11.0)
    assert headroom.floor is headroom.ceiling is headroom.max_ratio is None  # reported, not a target


def test_ingest_headline_has_every_number_the_issue_names() -> None:
    ingest = _results().ingest
    assert ingest is not None
    assert (ingest.hookstream_rps, ingest.baseline_rps, ingest.peer_rps) == (3800.0, 1000.0, 5000.0)
    assert ingest.ceiling_rps == 8000.0  # the better of the two ceilings
    assert ingest.p99_ms_at_1000 == 20.0
    assert ingest.cpu_ms_per_request == 0.316
    assert ingest.ceiling_cpu_ms_per_request == 0.6  # 1.8 cores at 3000 req/s
    assert (ingest.ratio_vs_baseline, ingest.ratio_vs_peer, ingest.cpu_vs_flask_ceiling) == (3.8, 0.76, 0.527)
    saved = json.loads(json.dumps(plain(_results())))["ingest"]
    for key in ("hookstream_rps", "baseline_rps", "peer_rps", "ceiling_rps", "p99_ms_at_1000",
                "cpu_ms_per_request", "ceiling_cpu_ms_per_request"):  # fmt: skip
        assert saved[key] is not None, key


def test_targets_say_which_were_met_and_which_were_not_measured() -> None:
    results = _results()
    assert results.ingest is not None
    raw, decoding = LoopRate("raw", 100, 1.0, 10000.0, 50.0), LoopRate("decode", 100, 1.0, 5000.0, 50.0)
    indexer = LoopRate("indexer", 100, 1.0, 8000.0, 60.0, fraction_of_raw=0.8)
    notifier = LoopRate("notifier", 100, 1.0, 100.0, 60.0, fraction_of_raw=0.01)
    consumers = Consumers(100, 1.0, raw, decoding, (indexer, notifier))
    compared = [
        Comparison("producer with Redis dedupe, acked req/s", 3500.0, "embedded", 3800.0, "req/s", floor=0.9),
        Comparison(
            "producer with Redis dedupe, p99 at 1000 req/s", 25.0, "embedded", 20.0, "ms", ceiling=20.0
        ),
        Comparison(
            "producer with the registry's framing, acked req/s", None, "without", 3800.0, "req/s", floor=0.95
        ),
        Comparison(
            "archiver RSS after 1M event_ids", 130.0, "after the first tenth", 100.0, "MB", max_ratio=1.25
        ),
    ]
    verdicts = {
        v.target: v.met
        for v in targets(results.ingest, compared, consumers, EndToEnd(1000, 999.0, 9990, True, 40.0, 300.0))
    }
    assert verdicts["hookstream >= 1.75x baseline (acked req/s)"] is True
    assert verdicts["hookstream CPU per webhook <= 1.5x the Flask ceiling's, same worker class"] is True
    assert verdicts["hookstream p99 <= 20 ms at 1000 req/s (ms)"] is True
    assert verdicts["hookstream answered no errors"] is True
    assert verdicts["producer with Redis dedupe, acked req/s >= 0.9x embedded"] is True
    assert verdicts["producer with Redis dedupe, p99 at 1000 req/s <= 20.0 ms"] is False
    assert verdicts["producer with the registry's framing, acked req/s >= 0.95x without"] is None
    assert verdicts["archiver RSS after 1M event_ids <= 1.25x after the first tenth"] is False
    assert verdicts["indexer >= 70% of the raw poll loop"] is True
    assert verdicts["notifier >= 70% of the raw poll loop"] is False
    assert verdicts["end-to-end p99 <= 1 s at 1000 req/s (ms)"] is True
    no_ingest = {v.target: v.met for v in targets(headline([]), [], None, None)}
    assert set(no_ingest.values()) == {None}


def test_report_is_tables_and_figures_and_json_keeps_computed_figures() -> None:
    results = _results()
    results.targets = targets(results.ingest or headline([]), [], None, None)
    text = markdown(results)
    assert "| hookstream | gthread:32@2 | 3,800 | 3,000 to 4,000 | 26% | 20 | 15 to 25 |" in text
    assert "| 2 | hookstream | gthread:32@2 | open | 3,000 |" in text  # round 2's open step
    prose = [line for line in text.splitlines() if line and not line.startswith(("|", "#", "!"))]
    assert len(prose) <= 5, prose  # the header lines; interpretation lives in README.md

    saved = json.loads(json.dumps(plain(results)))  # what write() puts in results.json
    step = saved["runs"][0]["steps"][1]
    assert step["acked_rps"] == 4000.0 and step["errors"] == 0 and step["cpu_ms_per_request"] == 0.3


def test_a_paired_ratio_is_the_median_of_the_rounds_not_of_the_medians() -> None:
    # rounds alternated the two sides: 0.9, 1.0, 0.7 -> 0.9, although 2,000 / 2,600 is 0.77
    paired = Comparison(
        "archiver events/s", 2000.0, "plain loop", 2600.0, "events/s", floor=0.8, paired_ratio=0.9
    )
    assert paired.ratio == 0.9
    assert Comparison("x", 2000.0, "y", 2600.0, "events/s").ratio == 0.769


def test_a_modules_own_record_is_rendered_as_flat_rows() -> None:
    @dataclasses.dataclass(frozen=True)
    class Side:
        events_per_s: float
        ratios: tuple[float, ...]

    @dataclasses.dataclass(frozen=True)
    class Sink:
        rounds: int
        opensearch: Side

    results = _results()
    results.extra["index sink"] = Sink(3, Side(1234.5, (0.8, 0.9)))
    text = markdown(results)
    assert "| opensearch.events_per_s | 1,234 |" in text
    assert "| opensearch.ratios | 0.8, 0.9 |" in text
