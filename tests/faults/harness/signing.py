"""Webhook signatures as each provider's sender makes them, written from the providers' specs.

Deliberately independent of `producer/providers/`: a black-box suite that signed with the
code under test would pass whenever signer and verifier share a bug.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field

FASTIO_FORMS = ("hex", "sha256", "timestamped")


@dataclass(frozen=True)
class SignedRequest:
    """One POST as a provider would send it; `macs` are the raw signature values it carries."""

    path: str
    body: bytes
    headers: dict[str, str]
    macs: tuple[str, ...] = field(default=())


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def fastio(body: bytes, secret: str, form: str = "hex", now: int | None = None) -> SignedRequest:
    headers = {"Content-Type": "application/json"}
    if form == "hex":
        mac = _hmac(secret.encode(), body).hex()
        headers["X-Fastio-Signature"] = mac
    elif form == "sha256":
        mac = _hmac(secret.encode(), body).hex()
        headers["Fastio-Signature"] = f"sha256={mac}"
    elif form == "timestamped":
        ts = int(time.time()) if now is None else now
        mac = base64.b64encode(_hmac(secret.encode(), f"{ts}.".encode() + body)).decode()
        headers["Fastio-Signature"] = f"t={ts},v1={mac}"
    else:
        raise ValueError(f"unknown Fast.io signature form {form!r}")
    return SignedRequest("/webhooks/fastio", body, headers, (mac,))


def github(body: bytes, secret: str, delivery: str, event: str) -> SignedRequest:
    mac = _hmac(secret.encode(), body).hex()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": f"sha256={mac}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": event,
    }
    return SignedRequest("/webhooks/github", body, headers, (mac,))


def stripe(body: bytes, secret: str, now: int | None = None) -> SignedRequest:
    ts = int(time.time()) if now is None else now
    mac = _hmac(secret.encode(), f"{ts}.".encode() + body).hex()
    headers = {"Content-Type": "application/json", "Stripe-Signature": f"t={ts},v1={mac}"}
    return SignedRequest("/webhooks/stripe", body, headers, (mac,))


def standard(body: bytes, secret: str, msg_id: str, now: int | None = None) -> SignedRequest:
    """Standard Webhooks: the key is the base64 part of `whsec_<base64>`."""
    ts = int(time.time()) if now is None else now
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = base64.b64encode(_hmac(key, f"{msg_id}.{ts}.".encode() + body)).decode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,{mac}",
    }
    return SignedRequest("/webhooks/standard", body, headers, (mac,))
