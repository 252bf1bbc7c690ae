"""Realistic signed webhooks for every provider, each carrying a canary nobody may log.

Every Fast.io event is a file of its own (unique `object_id`), so each sink holds exactly one
effect per event: one index row, one archive record, one notification.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from hookstream.settings import ProviderSecrets
from tests.faults.harness import signing
from tests.faults.harness.signing import SignedRequest

WORKSPACES = tuple(f"ws-{n}" for n in range(6))


@dataclass(frozen=True)
class SigningKeys:
    """Fresh signing secrets for one pipeline; `env()` is how the processes receive them."""

    fastio: str
    github: str
    stripe: str
    standard: str

    @classmethod
    def generate(cls) -> SigningKeys:
        return cls(
            fastio=secrets.token_hex(32),
            github=secrets.token_hex(20),
            stripe="whsec_" + secrets.token_hex(16),  # Stripe's own secrets look like this
            standard="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        )

    def env(self) -> dict[str, str]:
        return {
            "FASTIO_WEBHOOK_SECRET": self.fastio,
            "GITHUB_WEBHOOK_SECRET": self.github,
            "STRIPE_WEBHOOK_SECRET": self.stripe,
            "STANDARD_WEBHOOK_SECRET": self.standard,
        }

    def for_settings(self) -> ProviderSecrets:
        return ProviderSecrets(
            fastio=(self.fastio,), github=(self.github,), stripe=(self.stripe,), standard=(self.standard,)
        )

    def all(self) -> tuple[str, ...]:
        # The standard secret's key bytes are what a leak would most likely show, in base64.
        return (self.fastio, self.github, self.stripe, self.standard, self.standard.removeprefix("whsec_"))


@dataclass(frozen=True)
class Webhook:
    event_id: str
    provider: str
    canary: str
    request: SignedRequest


def new_event_id() -> str:
    return f"evt-{uuid.uuid4().hex}"


def fastio_payload(
    event_id: str,
    canary: str,
    n: int = 0,
    event: str = "workspace_storage_file_added",
    name: str = "report",
    workspaces: tuple[str, ...] = WORKSPACES,
) -> bytes:
    object_id = f"obj-{event_id.removeprefix('evt-')}"
    return json.dumps(
        {
            "event_id": event_id,
            "event": event,
            "workspace_id": workspaces[n % len(workspaces)],
            "object_id": object_id,
            "created": datetime.now(UTC).isoformat(),
            "resource": {
                "type": "file",
                "id": object_id,
                "name": f"{name}-{n}.pdf",
                "path": f"/reports/{name}-{n}.pdf",
                "size": 1000 + n,
            },
            "data": {"note": canary},
        }
    ).encode()


def fastio_webhook(
    secret: str,
    n: int = 0,
    form: str | None = None,
    event_id: str | None = None,
    name: str = "report",
    workspaces: tuple[str, ...] = WORKSPACES,
) -> Webhook:
    """A signed Fast.io file event; the signature form rotates with `n` unless given."""
    event_id = event_id or new_event_id()
    canary = f"canary-{secrets.token_hex(8)}"
    form = form or signing.FASTIO_FORMS[n % len(signing.FASTIO_FORMS)]
    body = fastio_payload(event_id, canary, n, name=name, workspaces=workspaces)
    return Webhook(event_id, "fastio", canary, signing.fastio(body, secret, form))


def github_webhook(secret: str) -> Webhook:
    event_id, canary = str(uuid.uuid4()), f"canary-{secrets.token_hex(8)}"
    body = json.dumps(
        {"action": "opened", "workspace_id": "ws-gh", "repository": {"full_name": "o/r"}, "note": canary}
    ).encode()
    return Webhook(event_id, "github", canary, signing.github(body, secret, event_id, "issues"))


def stripe_webhook(secret: str) -> Webhook:
    event_id, canary = f"evt_{uuid.uuid4().hex}", f"canary-{secrets.token_hex(8)}"
    body = json.dumps(
        {"id": event_id, "type": "invoice.paid", "object": "event", "data": {"object": {"memo": canary}}}
    ).encode()
    return Webhook(event_id, "stripe", canary, signing.stripe(body, secret))


def standard_webhook(secret: str) -> Webhook:
    event_id, canary = f"msg_{uuid.uuid4().hex}", f"canary-{secrets.token_hex(8)}"
    body = json.dumps({"type": "user.created", "workspace_id": "ws-std", "data": {"note": canary}}).encode()
    return Webhook(event_id, "standard", canary, signing.standard(body, secret, event_id))


def one_of_each(keys: SigningKeys) -> list[Webhook]:
    return [
        fastio_webhook(keys.fastio),
        github_webhook(keys.github),
        stripe_webhook(keys.stripe),
        standard_webhook(keys.standard),
    ]
