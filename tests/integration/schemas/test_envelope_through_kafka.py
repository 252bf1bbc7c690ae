"""Avro envelopes through a real broker: keyed by partition_key (here the workspace), read back
intact and in order."""

from collections import defaultdict

from confluent_kafka import Consumer, Producer

from hookstream.kafka import ConsumerConfig, ProducerConfig
from hookstream.settings import Settings
from schemas import codec


def test_envelopes_keep_partition_and_order_per_workspace(settings: Settings) -> None:
    producer = Producer(ProducerConfig.from_settings(settings).as_librdkafka())
    sent: dict[str, list[str]] = defaultdict(list)
    for i in range(120):
        workspace = f"ws-{i % 7}"
        envelope = codec.Envelope(
            event_id=f"evt-{i}",
            provider="fastio",
            event_type="workspace_storage_file_added",
            workspace_id=workspace,
            payload=f'{{"event_id":"evt-{i}","workspace_id":"{workspace}"}}'.encode(),
            received_at=codec.utc_now(),
        )
        producer.produce(settings.topic, codec.encode(envelope), key=workspace, headers=envelope.headers())
        sent[workspace].append(envelope.event_id)
    assert producer.flush(30) == 0

    consumer = Consumer(ConsumerConfig.from_settings(settings, "roundtrip").as_librdkafka())
    consumer.subscribe([settings.topic])
    received: dict[str, list[str]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    try:
        for _ in range(300):
            if sum(map(len, received.values())) == 120:
                break
            for msg in consumer.consume(100, timeout=1.0):
                assert msg.error() is None, msg.error()
                envelope = codec.decode(msg.value())
                key = msg.key().decode()
                assert key == envelope.partition_key == envelope.workspace_id
                assert dict(msg.headers())["event_id"] == envelope.event_id.encode()
                assert envelope.payload_json()["event_id"] == envelope.event_id
                received[key].append(envelope.event_id)
                partitions[key].add(msg.partition())
    finally:
        consumer.close()

    assert received == sent  # every event, and per workspace in the order sent
    assert all(len(p) == 1 for p in partitions.values())  # one workspace, one partition
    assert len(set().union(*partitions.values())) > 1  # and the workspaces do spread out
