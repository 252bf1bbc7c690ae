"""Pre-signed Fast.io deliveries for the load generator: distinct event_ids, one per line.

Each line of a targets file is one request in vegeta's JSON target format: `POST` to the app's
webhook URL, the body (base64) and its Fast.io `hex` signature (`X-Fastio-Signature: <hex>`),
which every app under test accepts. Signing happens here, before the clock starts, so the load
generator spends nothing on it. Bodies are compact JSON, about the size of a real Fast.io file event.
"""

from __future__ import annotations

import base64
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


def target(url: str, raw: bytes, secret: str = SECRET) -> dict[str, object]:
    """One signed delivery as a vegeta JSON target."""
    return {
        "method": "POST",
        "url": url,
        "body": base64.b64encode(raw).decode(),
        "header": {"Content-Type": ["application/json"], "X-Fastio-Signature": [signature(raw, secret)]},
    }


def write_targets(path: Path, url: str, prefix: str, count: int, secret: str = SECRET) -> Path:
    """`count` signed deliveries to `url` whose event_ids start with `prefix` (unique per run and step)."""
    with path.open("w") as out:
        for n in range(count):
            out.write(json.dumps(target(url, body(prefix, n), secret), separators=(",", ":")) + "\n")
    return path


def read_target(path: Path) -> tuple[bytes, dict[str, str]]:
    """The first delivery of a targets file: its body and headers (for a readiness probe)."""
    with path.open() as lines:
        first = json.loads(next(lines))
    return base64.b64decode(first["body"]), {name: values[0] for name, values in first["header"].items()}


def requests_needed(rate: int, seconds: float, open_max_rps: int) -> int:
    """Enough distinct requests that a step never runs out (the generator stops at the last
    one) nor repeats one (a repeat is a duplicate, which Hookstream answers without producing:
    cheaper, so not a fair request)."""
    return int((rate or open_max_rps) * seconds * 1.25) + 1000
