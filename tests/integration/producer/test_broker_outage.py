"""Kafka goes away: the producer answers 503 (never 2xx) within its deadline and says it is
not ready; Kafka comes back: the same app, without a restart, accepts again."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from hookstream.admin import TopicSpec, admin_client, ensure_topics
from hookstream.settings import ProviderSecrets, Settings
from hookstream_dev.kafka import LocalCluster
from hookstream_dev.process import free_port_block
from producer.app import close, create_app
from producer.providers import sign
from producer.samples import sample_event
from tests.integration.producer.conftest import read_records


def post(client: FlaskClient) -> tuple[int, dict[str, object], dict[str, str]]:
    body = sample_event("fastio")
    response = client.post("/webhooks/fastio", data=body, headers=sign("fastio", body, "outage-secret"))
    return response.status_code, json.loads(response.get_data()), dict(response.headers)


def delivery_failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("hookstream_kafka_delivery_failures_total", {"reason": reason})
    assert value is not None  # created at zero when the app started
    return value


def test_503_while_the_broker_is_down_then_200_again_without_restart(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "kafka", nodes=1, base_port=free_port_block(2), heap_mb=256)
    cluster.start()
    try:
        settings = replace(
            Settings(),
            kafka_bootstrap_servers=cluster.bootstrap_servers,
            topic="outage-events",
            secrets=ProviderSecrets(fastio=("outage-secret",)),
            delivery_timeout_s=2.0,
        )
        ensure_topics(admin_client(settings), [TopicSpec(settings.topic, 2)])
        app = create_app(settings)
        client = app.test_client()
        try:
            assert post(client)[0] == 200

            cluster.stop()
            timeouts = delivery_failures("timeout")
            status, answer, headers = post(client)
            assert status == 503
            assert answer["error"] == "kafka_unavailable"
            assert "within 2s" in str(answer["detail"])  # the deadline ended the wait, not a hang
            assert int(headers["Retry-After"]) > 0
            assert delivery_failures("timeout") == timeouts + 1
            ready = client.get("/readyz")
            assert ready.status_code == 503 and json.loads(ready.get_data())["error"] == "not_ready"

            cluster.start()
            statuses = []
            for _ in range(30):  # librdkafka reconnects on its own backoff schedule
                statuses.append(post(client)[0])
                if statuses[-1] == 200:
                    break
                time.sleep(1)
            assert statuses[-1] == 200, statuses
            assert set(statuses) <= {200, 503}  # never anything but a clear answer
            assert client.get("/readyz").status_code == 200
        finally:
            close(app)
        # The first and the last accepted events are in the topic (a 503'd one may be too:
        # librdkafka kept retrying it, a duplicate consumers drop, never a loss).
        assert len(read_records(settings, 2, timeout_s=20)) >= 2
    finally:
        cluster.stop()
