"""The report's shape: the `ingest` headline the issue names, verdicts, and Markdown."""

from __future__ import annotations

import json
from typing import Any

from bench.report import markdown, summarize


def _step(offered: int, acked_rps: float, p99: float, errors: int = 0) -> dict[str, Any]:
    latency = {
        "min": 1.0,
        "mean": 2.0,
        "max": p99 * 2,
        "p50": 2.0,
        "p90": 3.0,
        "p95": 4.0,
        "p99": p99,
        "p999": p99,
    }
    return {
        "offered_rps": offered,
        "acked_rps": acked_rps,
        "latency_ms": latency,
        "errors": errors,
        "non_2xx": errors,
        "socket_errors": 0,
        "timeouts": 0,
        "cores_busy": {"app": 1.2, "broker": 0.3, "wrk": 0.1},
    }


def _app(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "app": name,
        "setting": "gthread:32@2",
        "steps": list(steps),
        "peak_acked_rps": max(s["acked_rps"] for s in steps),
        "peak_rss_mb": [],
    }


def _results() -> dict[str, Any]:
    return {
        "started_at": "2026-01-01T00:00:00+00:00",
        "mode": "quick",
        "duration_s": 60.0,
        "machine": {
            "cores": 2,
            "cpu_model": "x",
            "memory_gib": 24.0,
            "kernel": "6",
            "git_commit": "abc",
            "load_average_at_start": [0.1, 0.1, 0.1],
            "versions": {"python": "3.11"},
        },
        "apps": {
            "hookstream": _app("hookstream", _step(1000, 1000.0, 20.0), _step(0, 4000.0, 80.0)),
            "baseline": _app("baseline", _step(1000, 600.0, 90.0, errors=3), _step(0, 1000.0, 300.0)),
            "peer": _app("peer", _step(1000, 1000.0, 30.0), _step(0, 5000.0, 60.0)),
            "flask_ceiling": _app("flask_ceiling", _step(0, 3000.0, 40.0)),
            "wsgi_ceiling": _app("wsgi_ceiling", _step(0, 8000.0, 20.0)),
        },
        "consumers": {
            "raw_poll_loop": {"events_per_s": 10000.0},
            "groups": {
                "indexer": {"events_per_s": 8000.0, "fraction_of_raw": 0.8},
                "notifier": {"events_per_s": 100.0, "fraction_of_raw": 0.01},
            },
        },
        "end_to_end": {"p50_ms": 40.0, "p99_ms": 300.0},
    }


def test_ingest_headline_has_every_number_the_issue_names() -> None:
    ingest = summarize(_results())["ingest"]

    assert ingest["hookstream_rps"] == 4000.0
    assert ingest["baseline_rps"] == 1000.0
    assert ingest["peer_rps"] == 5000.0
    assert ingest["ceiling_rps"] == 8000.0  # the better of the two ceilings
    assert ingest["ratio_vs_baseline"] == 4.0
    assert ingest["ratio_vs_peer"] == 0.8
    assert ingest["fraction_of_ceiling"] == 0.5
    assert ingest["p99_ms_at_1000"] == 20.0
    assert ingest["errors"] == {"hookstream": 0, "baseline": 3, "peer": 0}


def test_targets_say_which_were_met_and_which_were_not_measured() -> None:
    results = _results()
    del results["apps"]["peer"]
    verdicts = {t["target"]: t["met"] for t in summarize(results)["targets"]}

    assert verdicts["hookstream >= 2x baseline (acked req/s)"] is True
    assert verdicts["hookstream >= 1.0x peer (acked req/s)"] is None  # no peer in this run
    assert verdicts["p99 <= 50 ms at 1000 req/s"] is True
    assert verdicts["indexer >= 70% of the raw poll loop"] is True
    assert verdicts["notifier >= 70% of the raw poll loop"] is False
    assert verdicts["end-to-end p99 <= 1 s at 1000 req/s (ms)"] is True


def test_report_is_json_and_renders_as_markdown_tables() -> None:
    report = summarize(_results())
    assert json.loads(json.dumps(report))["ingest"]["ratio_vs_peer"] == 0.8

    text = markdown(report)
    assert "| hookstream | gthread:32@2 | open | 4,000 |" in text
    assert "**no**" in text  # the missed notifier target is visible


def test_missed_targets_name_the_bottleneck_and_what_was_tried() -> None:
    results = _results()
    results["apps"]["hookstream"]["steps"][-1]["cpu_ms_per_acked_request"] = {"app": 0.4, "broker": 0.1}
    results["consumers"]["raw_poll_loop_decoding"] = {"events_per_s": 5000.0}
    results["what_was_tried"] = "- the producer moved to ASGI\n"
    results["config"] = {"connections": 64}
    results["worker_choice"] = {"hookstream": {"setting": "uvicorn@2", "why": "3,000 acked req/s"}}
    text = markdown(summarize(results))

    missed = text.split("## Targets missed")[1].split("## Ingest, step by step")[0]
    assert "hookstream >= 1.0x peer" in missed  # 4000 vs the peer's 5000
    assert "kept 1.2 cores busy, the broker 0.3 and wrk 0.1" in missed
    assert "CPU was not the limit: 64 connections at 4,000 req/s means each request spent 16 ms" in missed
    assert "Consumer notifier: 100 events/s" in missed and "0.5" in missed  # decoding alone halves it
    assert "- the producer moved to ASGI" in missed
    assert "**hookstream: uvicorn@2**: 3,000 acked req/s." in text


def test_no_missed_section_when_every_target_is_met() -> None:
    results = _results()
    results["apps"]["peer"] = _app("peer", _step(1000, 1000.0, 30.0), _step(0, 3000.0, 60.0))
    del results["consumers"]["groups"]["notifier"]
    assert "## Targets missed" not in markdown(summarize(results))
