"""The upper bound for a Python consumer: a raw confluent-kafka poll loop over the same topic.

Commit-after-processing stripped to the minimum: poll a batch, check each record's error,
store its offset (auto-commit sends the stored ones), no decoding, no handler. With `decode`
it also decodes each Avro envelope, to show what the shared decoding costs before any handler.
Run as its own process, like a group member:
`python -m bench.rawloop BOOTSTRAP TOPIC GROUP COUNT [decode]`.
Prints one JSON line: events, seconds from the first record to the COUNT-th, events/s, and
the process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from confluent_kafka import Consumer, KafkaException

BATCH = 500


def consume(
    bootstrap: str, topic: str, group: str, count: int, decode: bool = False, timeout_s: float = 300.0
) -> dict[str, float]:
    from schemas.codec import decode as decode_envelope

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.offset.store": False,
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([topic])
    seen, first_at = 0, 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while seen < count and time.monotonic() < deadline:
            for msg in consumer.consume(BATCH, timeout=1.0):
                if msg.error():
                    raise KafkaException(msg.error())
                if not seen:
                    first_at = time.perf_counter()
                if decode:
                    decode_envelope(msg.value())
                consumer.store_offsets(msg)
                seen += 1
        elapsed = time.perf_counter() - first_at
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return {
        "events": seen,
        "seconds": round(elapsed, 3),
        "events_per_s": round(seen / elapsed, 1) if elapsed > 0 else 0.0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    bootstrap, topic, group, count = sys.argv[1:5]
    print(json.dumps(consume(bootstrap, topic, group, int(count), decode=sys.argv[5:6] == ["decode"])))
