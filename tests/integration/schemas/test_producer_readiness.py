"""The producer with a registry it cannot reach at start: not ready, and a webhook is 503 (the
sender retries), never a record in some other framing."""

from __future__ import annotations

from dataclasses import replace

from hookstream.settings import ProviderSecrets, Settings
from producer.app import close, create_app
from producer.providers import sign
from producer.samples import sample_event
from tests.integration.producer.conftest import SECRETS, read_records


def test_an_unreachable_registry_at_start_fails_readiness_and_webhooks(settings: Settings) -> None:
    settings = replace(
        settings,
        schema_registry_url="http://127.0.0.1:9/apis/ccompat/v7",  # nothing listens on port 9
        secrets=ProviderSecrets(fastio=(SECRETS["fastio"],)),
    )
    app = create_app(settings)
    client = app.test_client()
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "schema registry unreachable" in ready.json["detail"]  # type: ignore[index]
        body = sample_event("fastio")
        answer = client.post("/webhooks/fastio", data=body, headers=sign("fastio", body, SECRETS["fastio"]))
        assert answer.status_code == 503 and answer.headers["Retry-After"]
        assert "schema registry unreachable" in answer.json["detail"]  # type: ignore[index]
    finally:
        close(app)
    assert read_records(settings, 1, timeout_s=3) == []
