"""The producer against the real broker: accepted events land in the topic as the contract
says, and every refusal has its status, JSON code and metric."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from flask import Flask, request
from flask.testing import FlaskClient as Client
from prometheus_client import REGISTRY
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from hookstream.settings import Settings
from producer.app import close, create_app
from producer.providers import PROVIDERS, sign
from producer.samples import fastio_event, sample_event
from producer.webhook import CHUNK
from schemas.codec import CURRENT_VERSION, decode
from tests.integration.producer.conftest import SECRETS, read_records, records_in_topic


def post(client: Client, provider: str, body: bytes, path: str | None = None, **options: object):  # type: ignore[no-untyped-def]
    headers = sign(provider, body, SECRETS[provider], **options)
    return client.post(path or f"/webhooks/{provider}", data=body, headers=headers)


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} does not exist"
    return value


def rejections(provider: str, reason: str) -> float:
    return sample("hookstream_http_rejections_total", provider=provider, reason=reason)


def test_a_fastio_event_lands_in_the_topic_keyed_by_workspace(
    client: Client, producer_settings: Settings
) -> None:
    event = fastio_event(workspace_id="ws_42")
    body = json.dumps(event).encode()
    response = post(client, "fastio", body, form="timestamped")
    assert response.status_code == 200
    assert response.json == {"status": "accepted", "event_id": event["event_id"], "duplicate": False}

    assert records_in_topic(producer_settings) == 1  # one, and no second copy
    [record] = read_records(producer_settings, 1)
    assert record.key() == b"ws_42"
    assert dict(record.headers() or []) == {
        "event_id": event["event_id"].encode(),
        "event_type": b"workspace_storage_file_added",
        "provider": b"fastio",
        "schema_version": str(CURRENT_VERSION).encode(),
    }
    envelope = decode(record.value())
    assert envelope.payload == body  # byte for byte
    assert envelope.event_id == event["event_id"]
    assert (envelope.provider, envelope.workspace_id) == ("fastio", "ws_42")
    assert envelope.object_id == event["object_id"]
    assert envelope.signature_scheme == "timestamped"
    assert envelope.occurred_at is not None


def test_the_fastio_guide_url_is_an_alias(client: Client, producer_settings: Settings) -> None:
    response = post(client, "fastio", sample_event("fastio"), path="/webhook/fastio", form="hex")
    assert response.status_code == 200
    assert records_in_topic(producer_settings) == 1


@pytest.mark.parametrize("provider", ["github", "stripe", "standard"])
def test_other_providers_land_with_their_own_ids(
    client: Client, producer_settings: Settings, provider: str
) -> None:
    body = sample_event(provider)
    response = post(client, provider, body)
    assert response.status_code == 200, response.json
    assert records_in_topic(producer_settings) == 1  # one, and no second copy
    [record] = read_records(producer_settings, 1)
    envelope = decode(record.value())
    assert envelope.provider == provider
    assert envelope.event_id == response.json["event_id"]
    # No top-level workspace_id in these samples: keyed by the event id (see test_parsing for
    # a configured, dotted key field).
    assert record.key() == envelope.event_id.encode() == envelope.partition_key.encode()
    assert envelope.workspace_id is None  # envelope v3: only Fast.io has workspaces


def test_a_repeated_event_id_is_answered_but_not_produced_again(
    client: Client, producer_settings: Settings
) -> None:
    body = sample_event("fastio")
    before = sample("hookstream_duplicates_total", provider="fastio")
    first, second = post(client, "fastio", body), post(client, "fastio", body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json["duplicate"] is True
    assert sample("hookstream_duplicates_total", provider="fastio") == before + 1
    post(client, "fastio", sample_event("fastio"))
    assert records_in_topic(producer_settings) == 2  # the first copy and the other event, not the repeat


# -- refusals ---------------------------------------------------------------------------------


def assert_refused(response, status: int, code: str, provider: str = "fastio") -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data()
    assert response.headers["Content-Type"] == "application/json"
    assert response.json["error"] == code
    assert response.json["detail"]
    return response.json


def test_401_missing_wrong_and_stale_signatures(client: Client) -> None:
    body = sample_event("fastio")
    before = rejections("fastio", "invalid_signature")
    missing = client.post("/webhooks/fastio", data=body, headers={"Content-Type": "application/json"})
    assert_refused(missing, 401, "missing_signature")
    wrong = sign("fastio", body, "not-the-secret")
    assert_refused(client.post("/webhooks/fastio", data=body, headers=wrong), 401, "invalid_signature")
    assert rejections("fastio", "invalid_signature") == before + 1
    stale = post(client, "fastio", body, form="timestamped", timestamp=1_600_000_000)
    assert "from the server's clock" in assert_refused(stale, 401, "stale_signature")["detail"]


def test_404_unknown_and_disabled_providers(producer_settings: Settings) -> None:
    from dataclasses import replace

    from hookstream.settings import ProviderSecrets

    only_fastio = create_app(replace(producer_settings, secrets=ProviderSecrets(fastio=("s",))))
    client = only_fastio.test_client()
    body = sample_event("github")
    assert_refused(client.post("/webhooks/gitlab", data=body), 404, "unknown_provider")
    assert_refused(client.post("/webhooks/github", data=body), 404, "provider_disabled")
    assert rejections("unknown", "unknown_provider") >= 1  # scanners do not mint label values
    before = rejections("unknown", "not_found")
    assert_refused(client.post("/webhooks/github/extra", data=body), 404, "not_found")
    assert rejections("unknown", "not_found") == before + 1


def test_405_only_post(client: Client) -> None:
    response = client.get("/webhooks/fastio")
    assert_refused(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def test_413_by_content_length_before_reading(client: Client, producer_settings: Settings) -> None:
    limit = producer_settings.max_body_bytes
    never_read = io.BytesIO(b"")  # the body is refused on its announced length alone
    response = client.post(
        "/webhooks/fastio",
        input_stream=never_read,
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(limit + 1)},
    )
    assert_refused(response, 413, "body_too_large")


def test_413_while_reading_a_body_without_length(client: Client, producer_settings: Settings) -> None:
    limit = producer_settings.max_body_bytes
    big = b'{"pad": "' + b"x" * (3 * limit) + b'"}'
    stream = io.BytesIO(big)
    environ = EnvironBuilder(
        "/webhooks/fastio", method="POST", input_stream=stream, content_type="application/json"
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)  # as a chunked upload arrives: no length to refuse on
    environ["wsgi.input_terminated"] = True  # as gunicorn says of a chunked body it de-frames
    response = Response.from_app(client.application, environ)
    assert_refused(response, 413, "body_too_large")
    # Read, and stopped with the chunk that crossed the limit.
    assert limit < stream.tell() <= limit + CHUNK < len(big)


def test_413_for_an_event_within_the_body_limit_that_kafka_cannot_take(
    client: Client, producer_settings: Settings
) -> None:
    # librdkafka's message.max.bytes (1,000,000) is below the default body limit (1 MiB).
    event = {**fastio_event(), "pad": "x" * 1_000_000}
    body = json.dumps(event).encode()
    assert len(body) <= producer_settings.max_body_bytes
    body_of = assert_refused(post(client, "fastio", body), 413, "body_too_large")
    assert "larger than Kafka accepts" in body_of["detail"]
    assert records_in_topic(producer_settings) == 0
    # Not held as in flight: the same event, small enough, is produced at once.
    small = json.dumps({**event, "pad": ""}).encode()
    assert post(client, "fastio", small).status_code == 200


def test_415_not_json(client: Client) -> None:
    body = sample_event("fastio")
    headers = {**sign("fastio", body, SECRETS["fastio"]), "Content-Type": "application/x-www-form-urlencoded"}
    assert_refused(client.post("/webhooks/fastio", data=body, headers=headers), 415, "unsupported_media_type")
    headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
    assert client.post("/webhooks/fastio", data=body, headers=headers).status_code == 200


def test_400_invalid_json_after_a_valid_signature(client: Client) -> None:
    assert_refused(post(client, "fastio", b'{"event_id": '), 400, "invalid_json")
    assert_refused(post(client, "fastio", b"\xff\xfe{}"), 400, "invalid_json")


def test_400_identifiers_that_are_not_valid_unicode(client: Client) -> None:
    body = b'{"event_id": "\\ud800", "event": "x", "workspace_id": "w"}'
    assert_refused(post(client, "fastio", body), 400, "invalid_json")


def test_422_names_every_missing_field(client: Client) -> None:
    body = json.dumps({"event_id": f"evt_{uuid.uuid4().hex}", "data": {}}).encode()
    refused = assert_refused(post(client, "fastio", body), 422, "missing_fields")
    assert refused["fields"] == ["event", "workspace_id"]
    assert "event, workspace_id" in refused["detail"]
    github = client.post(
        "/webhooks/github",
        data=b"{}",
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign("github", b"{}", SECRETS["github"])["X-Hub-Signature-256"],
        },
    )
    assert assert_refused(github, 422, "missing_fields")["fields"] == ["X-GitHub-Delivery", "X-GitHub-Event"]


def test_every_refusal_is_counted_by_status(client: Client) -> None:
    before = sample("hookstream_http_requests_total", provider="fastio", status="422")
    post(client, "fastio", b"{}")
    assert sample("hookstream_http_requests_total", provider="fastio", status="422") == before + 1


def test_health_readiness_and_unknown_routes(client: Client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and json.loads(ready.get_data())["status"] == "ready"
    assert_refused(client.get("/nope"), 404, "not_found")
    assert_refused(client.post("/healthz"), 405, "method_not_allowed")


def test_readyz_is_503_when_the_topic_does_not_exist(producer_settings: Settings) -> None:
    from dataclasses import replace

    app = create_app(replace(producer_settings, topic=f"missing-{uuid.uuid4().hex}"))
    try:
        response = app.test_client().get("/readyz")
        assert_refused(response, 503, "not_ready")
        assert response.headers["Retry-After"]
    finally:
        close(app)


def test_metrics_page_has_the_contract_names(client: Client) -> None:
    post(client, "fastio", sample_event("fastio"))
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "hookstream_http_requests_total",
        "hookstream_http_rejections_total",
        "hookstream_http_request_duration_seconds_bucket",
        "hookstream_kafka_delivery_duration_seconds_bucket",
        "hookstream_http_requests_in_flight",
        "hookstream_duplicates_total",
    ):
        assert name in text, name


def test_a_405_from_routing_is_counted_and_logged_as_a_webhook(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    before = rejections("fastio", "method_not_allowed")
    with caplog.at_level(logging.INFO, logger="producer.webhook"):
        client.put("/webhooks/fastio", data=b"{}")
    assert rejections("fastio", "method_not_allowed") == before + 1
    [line] = [record.fields for record in caplog.records if record.name == "producer.webhook"]  # type: ignore[attr-defined]
    assert line["status"] == 405 and line["provider"] == "fastio"


def test_one_log_line_per_webhook_with_the_gateways_request_id(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    body = sample_event("fastio")
    headers = {**sign("fastio", body, SECRETS["fastio"]), "X-Request-ID": "req-7f3a"}
    with caplog.at_level(logging.INFO, logger="producer.webhook"):
        response = client.post("/webhooks/fastio", data=body, headers=headers)
        post(client, "fastio", b"{}")  # no X-Request-ID: no request_id field
    lines = [record.fields for record in caplog.records if record.name == "producer.webhook"]  # type: ignore[attr-defined]
    assert len(lines) == 2
    assert lines[0]["request_id"] == "req-7f3a"
    assert lines[0]["event_id"] == json.loads(response.get_data())["event_id"] and lines[0]["status"] == 200
    assert "request_id" not in lines[1] and lines[1]["status"] == 422
    assert all(body.decode() not in str(line) for line in lines)


def test_app_hooks_see_every_webhook(app: Flask, client: Client) -> None:
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.path))  # e.g. an auth, tracing or rate-limit extension
    post(client, "fastio", sample_event("fastio"))
    client.get("/webhooks/fastio")
    assert seen == ["/webhooks/fastio", "/webhooks/fastio"]


def test_every_known_series_exists_at_zero_on_a_fresh_app(producer_settings: Settings) -> None:
    app = create_app(producer_settings)
    try:
        text = app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        close(app)
    for reason in ("timeout", "error"):
        assert f'hookstream_kafka_delivery_failures_total{{reason="{reason}"}}' in text
    for provider in (*PROVIDERS, "unknown"):
        for reason in ("invalid_signature", "kafka_unavailable", "body_too_large", "internal_error"):
            assert rejections(provider, reason) >= 0
        assert sample("hookstream_http_requests_total", provider=provider, status="503") >= 0
        assert sample("hookstream_duplicates_total", provider=provider) >= 0
