"""Set a topic and a consumer group up by hand, with plain confluent clients: records with
chosen timestamps on chosen partitions, and offsets committed without processing anything."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from hookstream.settings import Settings


def unique_group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def produce(settings: Settings, partition: int, timestamps_s: list[float]) -> None:
    """One record per timestamp on `partition`, written with that CreateTime."""
    producer = Producer({**settings.kafka_common(), "acks": "all"})
    for i, stamp in enumerate(timestamps_s):
        producer.produce(
            settings.topic, f"record-{i}".encode(), partition=partition, timestamp=int(stamp * 1000)
        )
    assert producer.flush(30) == 0


def commit(settings: Settings, group: str, offsets: dict[int, int]) -> None:
    """Commit `offsets` (partition -> next offset to read) for `group` as a consumer would."""
    consumer = Consumer({**settings.kafka_common(), "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(settings.topic, p, o) for p, o in offsets.items()]
        for tp in consumer.commit(offsets=tps, asynchronous=False) or []:
            assert tp.error is None, tp.error
    finally:
        consumer.close()


class Member:
    """A live member of a group: subscribed and holding partitions until closed."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.consumer = Consumer(
            {
                **settings.kafka_common(),
                "group.id": group,
                "enable.auto.commit": False,
                "session.timeout.ms": 10000,
            }
        )
        self.consumer.subscribe([settings.topic])
        deadline = time.monotonic() + 60
        while not self.consumer.assignment():
            assert time.monotonic() < deadline, f"no partitions assigned to a member of {group}"
            msg = self.consumer.poll(0.5)
            error = None if msg is None else msg.error()
            assert error is None or error.code() < 0, error  # negative codes: librdkafka events

    def close(self) -> None:
        self.consumer.close()
