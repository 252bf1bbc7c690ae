"""`make bench`: Hookstream's ingest and consumers measured side by side in one run.

One command starts a throwaway local broker, then, one at a time on their own loopback ports,
the Hookstream producer, the seed's produce+flush Flask receiver (the baseline), the FastAPI +
aiokafka peer and two Kafka-free ceilings; loads each with `wrk` at stepped offered rates;
measures the broker's own limit with Kafka's ProducerPerformance, each consumer group against
a raw poll loop, end-to-end latency and peak memory; and writes JSON, Markdown and a chart.

Run `python -m bench --help` for the knobs; `docs/benchmarks/README.md` explains the method.
"""
