"""JSON-lines logging for every Hookstream process.

One line per record: `ts`, `level`, `logger`, `msg`, plus whatever the caller passed in
`extra={"fields": {...}}`. Callers never pass a secret, a signature or a payload body;
`FORBIDDEN_FIELDS` is a last line of defence that drops such keys if one slips in.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORBIDDEN_FIELDS = frozenset({"secret", "signature", "payload", "body", "password", "authorization"})
# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k.lower() not in FORBIDDEN_FIELDS})
        if record.exc_info:
            # The exception's type and message, not the frames' locals: those may hold a body.
            exc = record.exc_info[1]
            line["error"] = f"{type(exc).__name__}: {exc}"
        return _ENCODER.encode(line)


_HTTP_CLIENT_LOGGERS = ("httpx", "httpx2", "opensearch", "botocore", "urllib3")


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr from every logger; idempotent."""
    # Records need not look up their thread: no line prints it. Under gevent the lookup made a
    # dummy Thread object for every greenlet that logged, about 50 us of a producer worker's CPU
    # per webhook (docs/benchmarks). The process id stays: gunicorn's own lines print it.
    logging.logThreads = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients of the shared stores log every request at INFO: one line per batch of
    # work, with URLs, and nothing an operator acts on. Their warnings and errors still show.
    for chatty in _HTTP_CLIENT_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)
