"""Choosing the baseline's and the WSGI ceiling's worker setting from their trials."""

from __future__ import annotations

from bench.results import Trial
from bench.trials import choose, failed


def _trial(app: str, setting: str, rps: float, errors: int = 0, cores: float = 1.0) -> Trial:
    return Trial(app, setting, rps, 10.0, errors, cores, round(1000 * cores / rps, 3))


def test_each_app_gets_its_own_fastest_setting_without_errors() -> None:
    trials = [
        _trial("baseline", "sync@2", 400.0, cores=0.3),
        _trial("baseline", "gthread:32@2", 1500.0, errors=12),
        _trial("baseline", "gthread:8@2", 1200.0),
        _trial("wsgi_ceiling", "sync@2", 6000.0, cores=1.6),
        failed("wsgi_ceiling", "gevent@2", "ServerError: exited"),
    ]
    setting, why = choose(trials, "baseline") or ("", "")
    assert setting == "gthread:8@2"
    assert why == "1,200 req/s, 0 errors, 0.833 ms CPU/req; runner-up sync@2 400 req/s, +200%"
    assert choose(trials, "wsgi_ceiling") == ("sync@2", "6,000 req/s, 0 errors, 0.267 ms CPU/req")
    assert choose(trials, "flask_ceiling") is None


def test_a_win_within_noise_says_so() -> None:
    close = [_trial("baseline", "sync@2", 3000.0), _trial("baseline", "gevent@2", 3050.0)]
    assert choose(close, "baseline") == (
        "gevent@2",
        "3,050 req/s, 0 errors, 0.328 ms CPU/req; runner-up sync@2 3,000 req/s, +2% (within noise)",
    )
