"""Realistic example payloads, one per provider, each with a fresh event id.

Used by `hookstream send` when no file is given, and by tests and benchmarks that need a
body shaped like what the sender really posts.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

_FILES = [
    ("Q3-board-report.pdf", "application/pdf", "/reports/2025"),
    ("site-survey.jpg", "image/jpeg", "/projects/north-yard/photos"),
    ("contract-v7.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "/legal"),
    ("agent-run-1187.json", "application/json", "/agents/outputs"),
]


def fastio_event(workspace_id: str | None = None) -> dict[str, Any]:
    """A Fast.io `workspace_storage_file_added` event, as its webhooks deliver one."""
    name, mime, folder = random.choice(_FILES)
    file_id = f"f_{uuid.uuid4().hex[:20]}"
    return {
        "event_id": f"evt_{uuid.uuid4().hex}",
        "event": "workspace_storage_file_added",
        "workspace_id": workspace_id or f"ws_{random.randint(1, 64):04d}",
        "object_id": file_id,
        "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "resource": {
            "type": "file",
            "id": file_id,
            "name": name,
            "path": f"{folder}/{name}",
            "size": random.randint(10_000, 50_000_000),
            "mime_type": mime,
        },
        "data": {
            "uploaded_by": {"id": f"u_{random.randint(1000, 9999)}", "type": "agent", "name": "ingest-agent"},
            "version": 1,
        },
    }


def sample_event(provider: str = "fastio") -> bytes:
    """A JSON body `provider` could send; ids in headers (GitHub, Standard) come from `sign`."""
    document: dict[str, Any]
    if provider == "fastio":
        document = fastio_event()
    elif provider == "github":
        document = {"zen": "Design for failure.", "hook_id": random.randint(1, 10**9)}
    elif provider == "stripe":
        document = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": "invoice.paid",
            "created": int(time.time()),
            "data": {
                "object": {"id": f"in_{uuid.uuid4().hex[:24]}", "object": "invoice", "amount_paid": 4200}
            },
        }
    elif provider == "standard":
        document = {
            "type": "file.uploaded",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"file_id": f"f_{uuid.uuid4().hex[:20]}", "workspace_id": "ws_0001"},
        }
    else:
        raise ValueError(f"no sample payload for provider {provider!r}")
    return json.dumps(document).encode()
