"""Small readers the harness relies on: config, Prometheus histograms, ProducerPerformance, py-spy."""

from __future__ import annotations

import pytest

from bench import promtext
from bench.broker import parse_perf_output
from bench.config import WorkerSetting, load_config
from bench.launch import command
from bench.profile import parse_collapsed, summarize
from bench.results import Share


def test_quick_mode_from_the_environment_and_flags_win() -> None:
    cfg = load_config([], {"BENCH_QUICK": "1", "BENCH_RATES": "100,200"})
    assert cfg.quick and cfg.steps == (100, 200, 0)
    assert load_config(["--rates", "300"], {"BENCH_RATES": "100"}).rates == (300,)
    assert not load_config([], {"BENCH_QUICK": "0"}).quick


def test_producer_tuning_variables_are_name_value_pairs() -> None:
    cfg = load_config([], {"BENCH_HOOKSTREAM_ENV": "HOOKSTREAM_LIBRDKAFKA_LINGER_MS=10 A=b=c"})
    assert cfg.hookstream_env == (("HOOKSTREAM_LIBRDKAFKA_LINGER_MS", "10"), ("A", "b=c"))
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        load_config([], {"BENCH_HOOKSTREAM_ENV": "oops"})


def test_unknown_stage_is_refused_in_one_line() -> None:
    with pytest.raises(SystemExit, match="unknown stage nope"):
        load_config(["--only", "ingest,nope"], {})


def test_worker_setting_round_trips_through_its_label() -> None:
    setting = WorkerSetting.parse("gthread:16@4")
    assert (setting.worker_class, setting.threads, setting.workers) == ("gthread", 16, 4)
    assert WorkerSetting.parse(setting.label) == setting
    assert WorkerSetting.parse("sync@2").label == "sync@2"
    with pytest.raises(ValueError, match="class must be"):
        WorkerSetting.parse("tornado@2")
    assert WorkerSetting.uvicorn(1).label == "uvicorn@1" and not WorkerSetting.uvicorn(1).is_gunicorn_class


def test_the_producer_runs_as_gunicorn_conf_ships_it() -> None:
    from producer import gunicorn_conf

    setting = WorkerSetting.of_producer()
    assert setting.workers == gunicorn_conf.workers
    # The producer's worker extends gevent's: `hookstream producer --worker-class gevent` runs
    # it, and the Flask ceiling runs under gevent's beside it.
    assert (gunicorn_conf.worker_class, setting.worker_class) == ("producer.worker.ProducerWorker", "gevent")


def test_every_round_has_the_same_structure_in_quick_and_full_mode() -> None:
    full, quick = load_config([], {}), load_config([], {"BENCH_QUICK": "1"})
    assert full.rounds == quick.rounds == 3
    assert full.apps == quick.apps and full.stages == quick.stages
    assert 1000 in quick.rates and quick.step_s < full.step_s
    for cfg in (full, quick):
        assert cfg.steps_of("flask_ceiling") == (0,)
        assert cfg.steps_of("hookstream_redis") == (500, 1000, 0)
        assert cfg.steps_of("baseline") == (*cfg.rates, 0)
        assert cfg.steps_of("hookstream") == (*sorted({*cfg.rates, 500}), 0)  # the variants' rates too
    assert load_config(["--rounds", "5"], {"BENCH_ROUNDS": "4"}).rounds == 5


METRICS = """# TYPE lat histogram
lat_bucket{group="indexer",le="0.01"} 10.0
lat_bucket{group="indexer",le="0.1"} 90.0
lat_bucket{group="indexer",le="1.0"} 100.0
lat_bucket{group="indexer",le="+Inf"} 100.0
lat_count{group="indexer"} 100.0
lat_sum{group="indexer"} 5.0
# TYPE done counter
done_total{group="indexer"} 7.0
done_total{group="archiver"} 3.0
"""


def test_histogram_quantiles_interpolate_within_the_bucket_like_prometheus() -> None:
    samples = promtext.parse(METRICS)
    buckets = promtext.buckets(samples, "lat", group="indexer")
    assert promtext.quantile(buckets, 0.5) == pytest.approx(0.01 + 0.09 * (40 / 80))
    assert promtext.quantile(buckets, 0.99) == pytest.approx(0.1 + 0.9 * 0.9)
    before = [(le, n / 2) for le, n in buckets]
    assert promtext.increase(buckets, before)[-1] == (float("inf"), 50.0)
    assert promtext.quantile([(float("inf"), 0.0)], 0.5) is None
    assert promtext.total(samples, "done_total", group="indexer") == 7.0
    assert promtext.total(samples, "done_total") == 10.0


def test_producer_performance_summary_line() -> None:
    out = (
        "523213 records sent, 104600.4 records/sec (49.88 MB/sec), 300.5 ms avg latency, "
        "600.0 ms max latency.\n"
        "1000000 records sent, 123456.8 records/sec (58.87 MB/sec), 245.12 ms avg latency, "
        "812.00 ms max latency, 230 ms 50th, 560 ms 95th, 700 ms 99th, 800 ms 99.9th.\n"
    )
    result = parse_perf_output(out)
    assert (result.records, result.records_per_s, result.p99_ms) == (1000000, 123456.8, 700.0)
    with pytest.raises(RuntimeError, match="no summary"):
        parse_perf_output("Exception in thread main\n")


def test_profile_charges_each_sample_to_the_outermost_part_it_was_in() -> None:
    stacks = parse_collapsed(
        'process 7:"python producer";run (/v/site-packages/gunicorn/workers/gthread.py:1);'
        "handle (/work/main/producer/webhook.py:10);publish (/work/main/producer/publisher.py:70) 30\n"
        "run (/v/site-packages/gunicorn/workers/gthread.py:1);handle (/work/main/producer/webhook.py:10);"
        "emit (/usr/lib/python3.11/logging/__init__.py:1);dumps (/usr/lib/python3.11/json/__init__.py:2) 10\n"
        "run (/v/site-packages/gunicorn/workers/gthread.py:1);recv (/usr/lib/python3.11/socket.py:3) 10\n"
    )
    samples, parts_found, self_time = summarize(stacks)
    assert samples == 50
    assert self_time[0] == Share("publish (producer/publisher.py)", 60.0)
    parts = {p.name: p.pct for p in parts_found}
    assert parts == {
        "kafka publish (produce + wait for ack)": 60.0,
        "logging (one JSON line per request)": 20.0,  # its JSON encoding is logging's cost, not "json"
        "gunicorn (HTTP parse, socket I/O, thread pool)": 20.0,
    }
    assert not any(entry.name.startswith("process ") for entry in self_time)


def test_the_producer_can_be_compared_under_another_worker_setting() -> None:
    assert load_config([], {}).producer_setting is None
    given = load_config(["--producer-setting", "gevent@2"], {"BENCH_PRODUCER_SETTING": "sync@4"})
    assert given.producer_setting == WorkerSetting("gevent", 2)
    argv = command("hookstream", 8123, WorkerSetting("gthread", 2, 16))
    assert argv[1:] == ["producer", "--bind", "127.0.0.1:8123", "--workers", "2", "--worker-class", "gthread",
                        "--threads", "16"]  # fmt: skip
    assert command("hookstream_redis", 8123, WorkerSetting("gevent", 2))[-2:] == ["--worker-class", "gevent"]


def test_quick_mode_tries_the_same_worker_settings_as_the_full_run() -> None:
    assert load_config([], {"BENCH_QUICK": "1"}).worker_trials == load_config([], {}).worker_trials
