"""wrk's output as the Lua script prints it, read back into a step's numbers."""

from __future__ import annotations

import pytest

from bench.wrk import WrkError, parse_output

WRK_STDOUT = """Running 10s test @ http://127.0.0.1:41234
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  40.00ms   90.00%
    Req/Sec     1.00k    50.00     1.10k    70.00%
  10012 requests in 10.00s, 1.20MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   1001.20
Transfer/sec:    123.00KB
BENCH_RESULT {"duration_us":10000000,"requests":10012,"bytes":1258291,"errors":{"connect":0,"read":2,\
"write":1,"status":12,"timeout":3},"latency_us":{"min":412,"mean":3100.5,"max":40000,"p50":2950,"p90":4100,\
"p95":5000,"p99":9800,"p999":30000},"wraps":0}
"""


def test_parses_the_result_line_into_acked_rate_latency_and_errors() -> None:
    result = parse_output(WRK_STDOUT, offered_rps=1000, loadgen_cpu_s=1.5)

    assert result.offered_rps == 1000
    assert result.duration_s == 10.0
    assert result.acked == 10000  # answered minus non-2xx
    assert result.acked_rps == 1000.0
    assert result.socket_errors == 3
    assert result.timeouts == 3
    assert result.errors == 12 + 3 + 3
    assert result.latency_ms["p50"] == 2.95
    assert result.latency_ms["p99"] == 9.8
    assert result.latency_ms["max"] == 40.0
    assert result.as_dict()["acked_rps"] == 1000.0
    assert result.as_dict()["loadgen_cpu_s"] == 1.5


def test_output_without_the_result_line_is_an_error_naming_what_wrk_said() -> None:
    with pytest.raises(WrkError, match="unable to connect"):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n", offered_rps=0)
