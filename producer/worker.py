"""The gunicorn worker class: uvicorn's, pinned to the fast HTTP stack.

gunicorn stays the process manager (forks, restarts, graceful stop, metrics hooks); each
worker runs one uvicorn server on uvloop with httptools' C parser, and serves every request
on its event loop. `auto` would silently fall back to the pure-Python h11 parser and asyncio's
loop if those were missing; pinning them makes a missing dependency fail at start instead.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class ProducerWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",  # no websockets here: an upgrade request is answered as plain HTTP
        "lifespan": "on",  # the app delivers what is still queued at shutdown
        "server_header": False,
        "proxy_headers": False,  # nothing here reads the client's address; skip the rewrite per request
        "access_log": False,  # the app logs one JSON line per webhook itself
    }
