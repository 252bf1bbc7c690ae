"""HTTP at the socket level, for what a well-behaved client library will not send: slow
trickles, lying Content-Lengths, malformed framing."""

from __future__ import annotations

import contextlib
import socket
import time
from urllib.parse import urlsplit


def address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def exchange(base_url: str, raw: bytes, timeout_s: float = 15.0, half_close: bool = False) -> int | None:
    """Send `raw` as is and return the response's status code (None: closed without one).
    `half_close`: then shut our side for writing, as a client that gave up mid-body does."""
    with socket.create_connection(address(base_url), timeout=timeout_s) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    status_line = data.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None


def request_head(path: str, headers: dict[str, str], extra: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class SlowClients:
    """`count` connections that each send a request one byte (or line) at a time, for at most
    `seconds`: half never finish their headers, half never finish their announced body."""

    def __init__(self, base_url: str, path: str, count: int, seconds: float, interval_s: float = 1.0) -> None:
        self.base_url = base_url
        self.path = path
        self.count = count
        self.seconds = seconds
        self.interval_s = interval_s
        self.socks: list[socket.socket] = []
        self.closed_by_server = 0

    def open(self) -> SlowClients:
        for i in range(self.count):
            sock = socket.create_connection(address(self.base_url), timeout=5)
            if i % 2:
                head = f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            else:
                head = (
                    f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000\r\n\r\n{"
                ).encode()
            sock.sendall(head)
            self.socks.append(sock)
        return self

    def trickle(self, stop_after_s: float | None = None) -> None:
        """Keep every connection alive with one more byte per interval until time is up."""
        deadline = time.monotonic() + (stop_after_s or self.seconds)
        while time.monotonic() < deadline:
            for i, sock in enumerate(list(self.socks)):
                try:
                    sock.sendall(b"X-Slow: 1\r\n" if i % 2 else b" ")
                except OSError:
                    self.socks.remove(sock)
                    self.closed_by_server += 1
            time.sleep(self.interval_s)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks.clear()
