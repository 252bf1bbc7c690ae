"""The WSGI ceiling: the same check as a bare WSGI callable, no framework at all.

What gunicorn alone costs; the gap to the Flask ceiling is what Flask's request handling costs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from bench.apps.signature import PATH, secret_key, valid
from hookstream.settings import Settings

KEY = secret_key(Settings.from_env())
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _answer(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] != PATH or environ["REQUEST_METHOD"] != "POST":
        return _answer(start_response, "404 Not Found", b'{"error":"not_found"}')
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if not valid(body, environ.get("HTTP_X_FASTIO_SIGNATURE"), KEY):
        return _answer(start_response, "401 Unauthorized", b'{"error":"invalid_signature"}')
    json.loads(body)
    return _answer(start_response, "200 OK", b'{"status":"accepted"}')
