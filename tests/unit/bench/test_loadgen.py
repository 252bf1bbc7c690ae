"""vegeta's per-request results read back into a step, latency from the intended send time."""

from __future__ import annotations

import pytest

from bench.loadgen import LoadError, parse_csv

SECOND = 1_000_000_000
MS = 1_000_000


def _row(ts: int, code: int, latency: int, seq: int, error: str = "") -> str:
    return f'{ts},{code},{latency},400,20,"{error}",,,{seq},POST,http://127.0.0.1:1/webhooks/fastio,'


def test_latency_at_an_offered_rate_counts_from_the_intended_send_time() -> None:
    # 10 req/s: slots 100 ms apart. Request 2 was sent 300 ms late (the generator queued it
    # behind a stall) and answered in 5 ms: 305 ms after its slot, not 5.
    t0 = 1_700_000_000 * SECOND
    rows = [
        _row(t0, 200, 5 * MS, 0),
        _row(t0 + 100 * MS, 200, 5 * MS, 1),
        _row(t0 + 500 * MS, 200, 5 * MS, 2),
        _row(t0 + 500 * MS, 503, 5 * MS, 3),
        _row(t0 + 500 * MS, 0, 5000 * MS, 4, "Post: context deadline exceeded (Client.Timeout exceeded)"),
        _row(t0 + 600 * MS, 0, 1 * MS, 5, "dial tcp: connection refused"),
    ]
    result = parse_csv("\n".join(rows) + "\n", offered_rps=10, loadgen_cpu_s=0.25)

    assert (result.requests, result.acked, result.non_2xx, result.timeouts, result.socket_errors) == (
        6,
        3,
        1,
        1,
        1,
    )
    assert result.latency_ms.max == 305.0  # request 2, from its slot at 200 ms
    assert result.latency_ms.p50 == 5.0
    assert result.service_p99_ms == 5.0  # from the send, the stall is invisible
    assert result.duration_s == 5.5  # first send to the last answer (the timeout)
    assert result.acked_rps == pytest.approx(3 / 5.5)
    assert result.loadgen_cpu_s == 0.25


def test_the_open_step_measures_from_the_send() -> None:
    t0 = 1_700_000_000 * SECOND
    rows = [_row(t0 + n * MS, 200, (n + 1) * MS, n) for n in range(100)]
    result = parse_csv("\n".join(rows), offered_rps=0)
    assert result.latency_ms.p99 == 99.0 and result.latency_ms.max == 100.0
    assert result.latency_ms.p50 == 50.0


def test_a_step_that_ran_out_of_requests_is_refused_not_reported() -> None:
    t0 = 1_700_000_000 * SECOND
    with pytest.raises(LoadError, match="BENCH_OPEN_MAX_RPS"):
        parse_csv(_row(t0, 200, MS, 0) + "\n" + _row(t0, 0, 0, 1, "no targets to attack"), offered_rps=0)
    with pytest.raises(LoadError, match="no request"):
        parse_csv("", offered_rps=100)
