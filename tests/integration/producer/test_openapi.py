"""/openapi.json against the app itself: every route documented, every documented operation
served, and every answer the app gives has a documented status and a body of the documented
shape (the check schemathesis would make, over requests chosen to reach each status)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient as Client
from werkzeug.test import TestResponse

from producer.providers import PROVIDERS, sign
from producer.samples import sample_event
from tests.integration.producer.conftest import SECRETS

UNPRODUCIBLE_HERE = {"500", "503"}  # 503 is asserted in test_broker_outage; 500 is a bug


def routes(app: Flask) -> set[tuple[str, str]]:
    """(path template, method) the app serves, in OpenAPI spelling."""
    served: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        methods = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        served |= {(path, method.lower()) for method in methods}
    return served


def template_of(path: str, document: dict[str, Any]) -> str:
    for template in document["paths"]:
        if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path):
            return template
    raise AssertionError(f"{path} is not documented")


def check(response: TestResponse, path: str, method: str, document: dict[str, Any], seen: set[str]) -> None:
    operation = document["paths"][template_of(path, document)][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered {status}, undocumented"
    seen.add(f"{template_of(path, document)} {method} {status}")
    content = operation["responses"][status].get("content", {})
    if "application/json" in content:
        schema = {**content["application/json"]["schema"], "components": document["components"]}
        jsonschema.validate(json.loads(response.get_data()), schema)
    for header in operation["responses"][status].get("headers", {}):
        assert header in response.headers, f"{status} lacks its documented {header} header"


def test_every_route_is_documented_and_every_operation_served(client: Client, app: Flask) -> None:
    document = json.loads(client.get("/openapi.json").get_data())
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == routes(app)
    assert document["openapi"].startswith("3.1")
    [parameter] = document["paths"]["/webhooks/{provider}"]["post"]["parameters"]
    assert parameter["schema"]["enum"] == list(PROVIDERS)


def test_every_answer_matches_the_document(client: Client) -> None:
    document = json.loads(client.get("/openapi.json").get_data())
    seen: set[str] = set()
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        check(client.get(path), path, "get", document, seen)

    good = sample_event("fastio")
    signed = sign("fastio", good, SECRETS["fastio"])
    attempts: list[tuple[str, bytes, dict[str, str]]] = [
        ("/webhooks/fastio", good, signed),  # 200
        ("/webhook/fastio", good, signed),  # 200, a duplicate
        ("/webhooks/fastio", b"{", sign("fastio", b"{", SECRETS["fastio"])),  # 400
        ("/webhooks/fastio", good, {"Content-Type": "application/json"}),  # 401
        ("/webhooks/gitlab", good, signed),  # 404
        ("/webhooks/fastio", b"x" * (1024 * 1024 + 1), signed),  # 413
        ("/webhooks/fastio", good, {**signed, "Content-Type": "text/plain"}),  # 415
        ("/webhooks/fastio", b"{}", sign("fastio", b"{}", SECRETS["fastio"])),  # 422
    ]
    for provider in ("github", "stripe", "standard"):
        body = sample_event(provider)
        attempts.append((f"/webhooks/{provider}", body, sign(provider, body, SECRETS[provider])))
    for path, body, headers in attempts:
        check(client.post(path, data=body, headers=headers), path, "post", document, seen)
    reached = {entry.split()[-1] for entry in seen if entry.startswith("/webhooks/{provider} post")}

    not_allowed = client.get("/webhooks/fastio")  # documented under POST, the only method
    assert not_allowed.status_code == 405
    jsonschema.validate(not_allowed.json, {"$ref": "#/components/schemas/Error", **document})
    reached.add("405")

    webhook_statuses = set(document["paths"]["/webhooks/{provider}"]["post"]["responses"])
    assert webhook_statuses - reached == UNPRODUCIBLE_HERE
