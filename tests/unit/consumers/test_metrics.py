"""Histogram observations batched per batch add up to exactly what plain observe() gives."""

from prometheus_client import CollectorRegistry, Histogram

from consumers.metrics import HistogramBatch


def test_a_batch_publishes_the_same_buckets_and_sum_as_observing_one_by_one() -> None:
    registry = CollectorRegistry()
    buckets = (0.001, 0.01, 0.1, 1.0)
    plain = Histogram("plain", "one by one", buckets=buckets, registry=registry)
    batched = Histogram("batched", "batched", buckets=buckets, registry=registry)
    values = [0.0, 0.001, 0.0011, 0.05, 0.1, 0.5, 1.0, 7.0, -0.2]  # bounds, between, beyond, negative
    batch = HistogramBatch(batched)
    for value in values:
        plain.observe(value)
        batch.observe(value)
    assert registry.get_sample_value("batched_count") == 0  # nothing until published
    batch.publish()
    batch.publish()  # a second publish adds nothing
    for le in ("0.001", "0.01", "0.1", "1.0", "+Inf"):
        expected = registry.get_sample_value("plain_bucket", {"le": le})
        assert registry.get_sample_value("batched_bucket", {"le": le}) == expected, le
    assert registry.get_sample_value("batched_sum") == registry.get_sample_value("plain_sum")
    assert registry.get_sample_value("batched_count") == len(values)
