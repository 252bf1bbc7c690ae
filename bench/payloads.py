"""Pre-signed Fast.io deliveries for the load generator: distinct event_ids, one per line.

Each line of a request file is `<hex HMAC-SHA256 of the body>\\t<body>`: the Fast.io `hex`
form (`X-Fastio-Signature: <hex>`), which every app under test accepts. Signing happens here,
before the clock starts, so the load generator spends nothing on it. Bodies are compact JSON
without tabs or newlines, about the size of a real Fast.io file event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

SECRET = "bench-secret-not-for-production"
WORKSPACES = 64  # keys spread over every partition, as many workspaces would


def body(prefix: str, n: int) -> bytes:
    workspace = f"ws-{n % WORKSPACES:04d}"
    event = {
        "event_id": f"evt-{prefix}-{n:09d}",
        "event": "workspace_storage_file_added",
        "workspace_id": workspace,
        "object_id": f"file-{prefix}-{n}",
        "created_at": "2025-11-22T10:00:00Z",
        "resource": {"id": f"file-{prefix}-{n}", "type": "file", "name": f"report-{n}.pdf", "size": 48213},
        "user": {"id": "usr-agent-7", "email": "agent-7@example.com"},
        "metadata": {"path": f"/{workspace}/reports/report-{n}.pdf", "mime_type": "application/pdf"},
    }
    return json.dumps(event, separators=(",", ":")).encode()


def signature(raw: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def write_requests(path: Path, prefix: str, count: int, secret: str = SECRET) -> Path:
    """`count` signed deliveries whose event_ids start with `prefix` (unique per run and step)."""
    with path.open("wb") as out:
        for n in range(count):
            raw = body(prefix, n)
            out.write(signature(raw, secret).encode() + b"\t" + raw + b"\n")
    return path


def requests_needed(rate: int, seconds: float, open_max_rps: int) -> int:
    """Enough distinct requests that a step never repeats one (a repeat would be a duplicate,
    which Hookstream answers without producing: cheaper, so not a fair request)."""
    return int((rate or open_max_rps) * seconds * 1.25) + 1000
