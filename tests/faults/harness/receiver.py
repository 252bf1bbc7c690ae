"""A local HTTP destination for the notifier that records every notification it receives.

Runs on loopback in a thread. `status_for` decides the answer per request, so a scenario can
play a destination that rejects everything (a bad deploy) and then recovers.

It behaves as a receiver honouring `Idempotency-Key` would: a repeat carrying the key of a
notification already accepted is no second notification. Exactly once over HTTP is impossible
when the sender can die between the receiver's 200 and its own record of it, so the notifier
promises at least once plus that key; the raw repeats are still counted (`raw_repeats`) and
a repeat without the key, or with another key, is a duplicate.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Event ids as the suite makes them (see webhooks.py); found anywhere in a notification body.
_EVENT_ID = re.compile(rb"(?:evt-[0-9a-f]{32}|evt_[0-9a-f]{32}|msg_[0-9a-f]{32})")


class NotificationReceiver:
    def __init__(self) -> None:
        self.accepted: list[tuple[str | None, bytes]] = []  # (Idempotency-Key, body)
        self.rejected: list[bytes] = []
        self.status_for: Callable[[bytes], int] = lambda body: 200
        self.delay_s = 0.0  # a slow destination keeps the notifier's batches open longer
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver.status_for(body)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                key = self.headers.get("Idempotency-Key")
                with receiver._lock:
                    if status < 300:
                        receiver.accepted.append((key, body))
                    else:
                        receiver.rejected.append(body)
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
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/notify"

    def __enter__(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def event_ids(self, honour_keys: bool = True) -> Counter[str]:
        """Accepted notifications naming each event id; with `honour_keys`, repeats of one
        Idempotency-Key count once (only a member killed mid-request may cause those)."""
        with self._lock:
            accepted = list(self.accepted)
        counts: Counter[str] = Counter()
        seen_keys: set[str] = set()
        for key, body in accepted:
            if honour_keys and key is not None:
                if key in seen_keys:
                    continue
                seen_keys.add(key)
            counts.update({m.decode() for m in _EVENT_ID.findall(body)})
        return counts

    def raw_repeats(self) -> int:
        """Accepted requests that repeated an Idempotency-Key already accepted."""
        with self._lock:
            keys = [key for key, _ in self.accepted if key is not None]
        return len(keys) - len(set(keys))

    def keys_missing(self) -> int:
        with self._lock:
            return sum(1 for key, _ in self.accepted if key is None)

    def json_bodies(self) -> list[Any]:
        with self._lock:
            return [json.loads(body) for _, body in self.accepted]
