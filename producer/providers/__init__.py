"""Webhook senders the producer understands, and how to sign a request as each would.

Signing (for `hookstream send`, tests, benchmarks, the fault suite):

    from producer.providers import sign
    headers = sign("fastio", body, secret)                       # Fastio-Signature: sha256=<hex>
    headers = sign("fastio", body, secret, form="timestamped")   # or form="hex"
    headers = sign("github", body, secret, event="push", delivery="<uuid>")
    headers = sign("stripe", body, secret)
    headers = sign("standard", body, "whsec_...", msg_id="msg_1")

Each returns every header the producer needs for that provider, Content-Type included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookstream.errors import ConfigError
from hookstream.settings import Settings
from producer.providers import fastio, github, standard, stripe
from producer.providers.base import Provider
from producer.providers.fastio import FastioProvider
from producer.providers.github import GithubProvider
from producer.providers.standard import StandardProvider
from producer.providers.stripe import StripeProvider

PROVIDERS: dict[str, type[Provider]] = {
    "fastio": FastioProvider,
    "github": GithubProvider,
    "stripe": StripeProvider,
    "standard": StandardProvider,
}
_SIGNERS: dict[str, Callable[..., dict[str, str]]] = {
    "fastio": fastio.sign,
    "github": github.sign,
    "stripe": stripe.sign,
    "standard": standard.sign,
}


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One verifier per provider that has a secret; the others stay disabled (404).

    With no secret at all there is nothing to verify against, so the producer fails closed.
    """
    if not settings.secrets.enabled():
        raise ConfigError(
            "no webhook secret is set, so every request would be refused: set FASTIO_WEBHOOK_SECRET "
            "(or GITHUB_, STRIPE_ or STANDARD_WEBHOOK_SECRET, or <NAME>_FILE)"
        )
    options: dict[str, Any] = {
        "tolerance_s": settings.timestamp_tolerance_s,
        "key_field": settings.partition_key_field,
    }
    enabled: dict[str, Provider] = {}
    for name in settings.secrets.enabled():
        secrets = getattr(settings.secrets, name)
        if name == "fastio":
            enabled[name] = FastioProvider(secrets, settings.fastio_signature_format, **options)
        else:
            enabled[name] = PROVIDERS[name](secrets, **options)
    return enabled


def sign(provider: str, body: bytes, secret: str, **options: Any) -> dict[str, str]:
    """All headers a request from `provider` carrying `body` needs; options go to its `sign`."""
    try:
        signer = _SIGNERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}") from None
    return {"Content-Type": "application/json", **signer(body, secret, **options)}
