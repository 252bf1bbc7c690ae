"""The producer's ASGI application: `create_app(settings)` is all a server needs.

Webhooks are served on the event loop by `producer.webhook`; everything else (health,
readiness, metrics, the API document, JSON 404/405) goes to a small Flask app
(`producer.ops`), run in a few threads through a WSGI adapter: those routes are cold, and
readiness blocks on Kafka. No Kafka client exists until the first request or readiness check,
so the app may be built before gunicorn forks its workers.
"""

from __future__ import annotations

import asyncio

from a2wsgi import WSGIMiddleware
from flask import Flask

from hookstream.logs import configure_logging
from hookstream.settings import Settings
from producer.dedupe import Deduper
from producer.ops import build_ops_app
from producer.providers import build_providers
from producer.publisher import Publisher
from producer.webhook import Receive, Scope, Send, WebhookEndpoint, is_webhook_path

_OPS_THREADS = 4  # health checks and scrapes; a slow /readyz must not hold up the others


class ProducerApp:
    def __init__(self, webhooks: WebhookEndpoint, ops: Flask, publisher: Publisher) -> None:
        self.webhooks = webhooks
        self.ops = ops
        self.publisher = publisher
        self._ops_asgi = WSGIMiddleware(ops.wsgi_app, workers=_OPS_THREADS)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif is_webhook_path(scope["path"]):
            await self.webhooks(scope, receive, send)
        else:
            await self._ops_asgi(scope, receive, send)  # type: ignore[arg-type]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Worker start and graceful stop: at the stop, deliver what is still queued."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

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
