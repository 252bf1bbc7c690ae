"""The baseline: the Flask receiver of the Fast.io Kafka guide (seed article 003), plainly.

Verify the signature, parse the JSON, enrich it, then `produce()` and `flush()` for every
request, so each request waits for its own record's `acks=all` round trip and shares no batch
with any other. The guide uses kafka-python's `send()`; this uses confluent-kafka's `produce()`
(the client Hookstream uses), so the comparison is about the design, not the client library.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from confluent_kafka import Producer
from flask import Flask, abort, request

from bench.apps.signature import PATH, secret_key, valid
from hookstream.settings import Settings

settings = Settings.from_env()
KEY = secret_key(settings)
app = Flask(__name__)

_producer: Producer | None = None
_producer_lock = threading.Lock()


def producer() -> Producer:
    """One per worker, made on first use: librdkafka's threads do not survive gunicorn's fork."""
    global _producer
    with _producer_lock:
        if _producer is None:
            _producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
        return _producer


@app.post(PATH)
def webhook() -> tuple[str, int]:
    if not valid(request.get_data(), request.headers.get("X-Fastio-Signature"), KEY):
        abort(401)
    event = request.get_json()
    if event.get("event_id") is None:
        abort(400)
    enriched = {
        **event,
        "received_at": datetime.now(UTC).isoformat(),
        "partition_key": event["workspace_id"],
    }
    producer().produce(settings.topic, key=event["workspace_id"], value=json.dumps(enriched).encode())
    producer().flush()
    return "", 200
