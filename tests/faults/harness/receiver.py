"""A local HTTP destination for the notifier that records every notification it receives.

Runs on loopback in a thread. `status_for` decides the answer per request, so a scenario can
play a destination that rejects everything (a bad deploy) and then recovers.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Event ids as the suite makes them (see webhooks.py); found anywhere in a notification body.
_EVENT_ID = re.compile(rb"(?:evt-[0-9a-f]{32}|evt_[0-9a-f]{32}|msg_[0-9a-f]{32})")


class NotificationReceiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.rejected: list[bytes] = []
        self.status_for: Callable[[bytes], int] = lambda body: 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver.status_for(body)
                with receiver._lock:
                    (receiver.bodies if status < 300 else receiver.rejected).append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the suite reads the lists
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/notify"

    def __enter__(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def event_ids(self) -> Counter[str]:
        """How many accepted notifications name each event id."""
        with self._lock:
            bodies = list(self.bodies)
        counts: Counter[str] = Counter()
        for body in bodies:
            counts.update({m.decode() for m in _EVENT_ID.findall(body)})
        return counts

    def json_bodies(self) -> list[Any]:
        with self._lock:
            return [json.loads(b) for b in self.bodies]
