"""`make bench`: Hookstream's ingest and consumers measured side by side in one run.

One command starts a throwaway local broker, then, interleaved over rounds on their own loopback
ports, the Hookstream producer (plain, with Redis dedupe, with the registry's framing), the seed's
produce+flush Flask receiver (the baseline), the FastAPI + aiokafka peer and two Kafka-free
ceilings; loads each with vegeta at stepped offered rates, latency from each request's intended
send time; compares the codecs, the indexer and the archiver with plain loops; measures the
broker's own limit with Kafka's ProducerPerformance, each consumer group against a raw poll loop,
end-to-end latency and peak memory; and writes JSON, Markdown tables and a chart.

Run `python -m bench --help` for the knobs; `docs/benchmarks/README.md` explains the method.
"""
