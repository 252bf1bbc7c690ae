"""The producer's WSGI application: `create_app(settings)` is all a server needs.

Webhooks take a fast path (`producer.webhook`, a bare WSGI callable); everything else goes
to a small Flask app (`producer.ops`). No Kafka client exists until the first request or
readiness check, so the app may be built before gunicorn forks its workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask

from hookstream.logs import configure_logging
from hookstream.settings import Settings
from producer.dedupe import Deduper
from producer.ops import build_ops_app
from producer.providers import build_providers
from producer.publisher import Publisher
from producer.webhook import StartResponse, WebhookEndpoint, is_webhook_path


class ProducerApp:
    def __init__(self, webhooks: WebhookEndpoint, ops: Flask, publisher: Publisher) -> None:
        self.webhooks = webhooks
        self.ops = ops
        self.publisher = publisher

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if is_webhook_path(environ.get("PATH_INFO", "")):
            return self.webhooks(environ, start_response)
        return self.ops.wsgi_app(environ, start_response)

    def close(self) -> None:
        """Deliver what is still queued, then drop the Kafka client (worker shutdown)."""
        self.publisher.close()


def create_app(settings: Settings, publisher: Publisher | None = None) -> ProducerApp:
    """Raises `ConfigError` when no provider has a secret: the producer fails closed."""
    providers = build_providers(settings)
    publisher = publisher or Publisher(settings)
    webhooks = WebhookEndpoint(settings, providers, publisher, Deduper(settings.dedupe_window_s))
    return ProducerApp(webhooks, build_ops_app(settings, publisher, sorted(providers)), publisher)


def app_from_env() -> ProducerApp:
    """What a gunicorn worker loads: settings from the environment, JSON logs to stderr."""
    configure_logging()
    return create_app(Settings.from_env())
