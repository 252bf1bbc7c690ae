"""Call the producer's ASGI app from werkzeug's test client, in process.

The tests build requests as WSGI environs (werkzeug's `Client`, `EnvironBuilder`), including
chunked uploads without a Content-Length and header values in latin-1, as a server delivers
them. `as_wsgi(app)` turns each environ into an ASGI scope and runs the app on one event loop
in a background thread, as a uvicorn worker runs it on its loop. The body is handed to the app
in chunks only as it asks for them, so a test can see how much of a stream the app read.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from producer.webhook import Message, Receive, Scope

CHUNK = 64 * 1024
ASGIApp = Any


class WsgiBridge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="asgi-loop", daemon=True).start()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        call = self.app(_scope(environ), _receiver(environ), send)
        asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout=60)
        start, *bodies = sent
        status = HTTPStatus(start["status"])
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in start["headers"]]
        start_response(f"{status.value} {status.phrase}", headers)
        return [b"".join(message.get("body", b"") for message in bodies)]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def as_wsgi(app: ASGIApp) -> WsgiBridge:
    return WsgiBridge(app)


def _scope(environ: dict[str, Any]) -> Scope:
    headers = [
        (key.removeprefix("HTTP_").lower().replace("_", "-").encode(), str(value).encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_") or (key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value)
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": environ["REQUEST_METHOD"],
        "scheme": environ.get("wsgi.url_scheme", "http"),
        # PEP 3333 carries the path's bytes as latin-1; ASGI wants it decoded as UTF-8.
        "path": environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
        "raw_path": environ.get("PATH_INFO", "").encode("latin-1"),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": (environ.get("SERVER_NAME", "localhost"), int(environ.get("SERVER_PORT", "80"))),
    }


def _receiver(environ: dict[str, Any]) -> Receive:
    """Chunks of wsgi.input: up to Content-Length when announced, else until the stream ends."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    left = int(length) if length else None  # None: read until the stream ends (chunked)
    done = False

    async def receive() -> Message:
        nonlocal left, done
        if done:
            return {"type": "http.disconnect"}
        chunk = stream.read(CHUNK if left is None else min(CHUNK, left))
        if left is not None:
            left -= len(chunk)
        done = not chunk or left == 0
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return receive
