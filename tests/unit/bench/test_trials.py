"""Choosing each app's worker setting from its trials, and saying why."""

from __future__ import annotations

from typing import Any

from bench.trials import choose, trial_record


def _trial(app: str, setting: str, rps: float, errors: int = 0, cores: float = 1.0) -> dict[str, Any]:
    step = {
        "acked_rps": rps,
        "latency_ms": {"p99": 10.0},
        "errors": errors,
        "cores_busy": {"app": cores},
        "cpu_ms_per_acked_request": {"app": round(1000 * cores / rps, 3)},
    }
    return trial_record(app, setting, step)


def test_each_app_gets_its_own_fastest_setting_without_errors() -> None:
    trials = [
        _trial("baseline", "sync@2", 400.0, cores=0.3),
        _trial("baseline", "gthread:32@2", 1500.0, errors=12),
        _trial("baseline", "gthread:8@2", 1200.0),
        _trial("wsgi_ceiling", "sync@2", 6000.0, cores=1.6),
        {"app": "wsgi_ceiling", "setting": "gevent@2", "error": "failed"},
    ]
    setting, why = choose(trials, "baseline") or ("", "")
    assert setting == "gthread:8@2"
    assert "faster settings had errors: gthread:32@2 1,500/s with 12 errors" in why
    assert "runner-up sync@2 400/s (0.3 cores busy, 0.75 ms CPU per request), the winner 200% ahead" in why
    setting, why = choose(trials, "wsgi_ceiling") or ("", "")
    assert setting == "sync@2" and "only setting that ran" in why
    assert choose(trials, "flask_ceiling") is None


def test_a_win_within_noise_says_so_and_a_clear_win_says_by_how_much() -> None:
    close = [_trial("hookstream", "uvicorn@1", 3000.0, cores=0.98), _trial("hookstream", "uvicorn@2", 3050.0)]
    setting, why = choose(close, "hookstream") or ("", "")
    assert setting == "uvicorn@2" and "either would do" in why

    clear = [_trial("hookstream", "uvicorn@1", 2000.0, cores=0.99), _trial("hookstream", "uvicorn@2", 3000.0)]
    setting, why = choose(clear, "hookstream") or ("", "")
    assert setting == "uvicorn@2"
    assert (
        "runner-up uvicorn@1 2,000/s (0.99 cores busy, 0.495 ms CPU per request), the winner 50% ahead" in why
    )
