"""What a registry's HTTP answers mean to a reader, against a loopback HTTP server that answers
as a failing registry would: only "no such id" is poison; every other failure is transient."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hookstream.errors import SchemaError, SchemaRegistryUnavailable
from hookstream.settings import Settings
from schemas.decoder import build_decoder
from schemas.serializer import build_serializer

VALUE = b"\x00\x00\x00\x00\x07\x06"  # Confluent framing, schema id 7


@pytest.fixture
def answering() -> Iterator[list[int]]:
    """A registry that answers every request with the status in the list (404: error_code 40403)."""
    status = [500]

    class Handle(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            code = 40403 if status[0] == 404 else status[0] * 100 + 1
            body = json.dumps({"error_code": code, "message": f"answer {status[0]}"}).encode()
            self.send_response(status[0])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    status.append(server.server_port)
    try:
        yield status
    finally:
        server.shutdown()
        server.server_close()


def _settings(status: list[int]) -> Settings:
    return replace(Settings(), schema_registry_url=f"http://127.0.0.1:{status[1]}", topic="t")


@pytest.mark.parametrize("code", [500, 503, 401, 403, 429])
def test_a_failing_registry_is_transient(answering: list[int], code: int) -> None:
    answering[0] = code
    with pytest.raises(SchemaRegistryUnavailable, match=f"HTTP {code}"):
        build_decoder(_settings(answering)).decode(VALUE)
    ready, why = build_serializer(_settings(answering)).ready()
    assert not ready and f"HTTP {code}" in why


def test_no_such_id_is_poison(answering: list[int]) -> None:
    answering[0] = 404
    with pytest.raises(SchemaError, match="schema id 7 does not exist in the registry: answer 404"):
        build_decoder(_settings(answering)).decode(VALUE)


def test_a_refused_schema_leaves_the_producer_unready_naming_the_refusal(answering: list[int]) -> None:
    answering[0] = 409
    ready, why = build_serializer(_settings(answering)).ready()
    assert not ready and "refused" in why and "answer 409" in why
