"""Errors are rendered once, by the app's handlers: even a crash in a hook or extension is
answered as JSON, counted under its reason and logged as the webhook's one line."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from prometheus_client import REGISTRY


def rejections(provider: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "hookstream_http_rejections_total", {"provider": provider, "reason": reason}
    )
    assert value is not None  # created at zero when the app started
    return value


def test_a_crash_is_a_json_500_counted_as_internal_error(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.before_request
    def broken_extension() -> None:
        if request.path.startswith("/webhooks/"):
            raise RuntimeError("an extension failed")

    before = rejections("github", "internal_error")
    with caplog.at_level(logging.INFO):
        response = client.post("/webhooks/github", data=b"{}", content_type="application/json")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.get_data()) == {
        "error": "internal_error",
        "detail": "unexpected server error; see logs",
    }
    assert rejections("github", "internal_error") == before + 1
    [line] = [r.fields for r in caplog.records if r.name == "producer.webhook"]  # type: ignore[attr-defined]
    assert line["status"] == 500 and line["provider"] == "github"
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)  # Flask logged the crash


def test_an_unknown_route_is_json_and_not_counted_as_a_webhook(client: FlaskClient) -> None:
    before = rejections("unknown", "not_found")  # a series created at zero: not_found under /webhooks/
    response = client.get("/admin")
    assert response.status_code == 404
    assert json.loads(response.get_data())["error"] == "not_found"
    assert rejections("unknown", "not_found") == before
