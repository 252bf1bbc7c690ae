"""The Flask ceiling: Hookstream's web layer with nothing behind it.

The same signature check and JSON parse, then 200 without Kafka: the fastest a Flask route
under these gunicorn settings can answer on this machine.
"""

from __future__ import annotations

import json

from flask import Flask, request

from bench.apps.signature import PATH, secret_key, valid
from hookstream.settings import Settings

KEY = secret_key(Settings.from_env())
app = Flask(__name__)


@app.post(PATH)
def webhook() -> tuple[dict[str, str], int]:
    body = request.get_data()
    if not valid(body, request.headers.get("X-Fastio-Signature"), KEY):
        return {"error": "invalid_signature"}, 401
    json.loads(body)
    return {"status": "accepted"}, 200
