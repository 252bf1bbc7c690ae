"""The producer: one Flask app, `create_app(settings)`, served by gunicorn (`producer.gunicorn_conf`).

Two blueprints (`producer.webhook`, `producer.ops`) and one set of error handlers that answer
every refusal as JSON `{"error", "detail", ...}`. No Kafka client exists until the first
request or readiness check, so the app may be built before gunicorn forks its workers.
`connect(app)` starts the worker's Kafka client after the fork and `close(app)` delivers what
is still queued (gunicorn's `post_worker_init` and `worker_exit` hooks call them).
"""

from __future__ import annotations

from flask import Flask, Response, g
from werkzeug.exceptions import HTTPException

from hookstream.logs import configure_logging
from hookstream.settings import Settings
from producer import metrics, ops, webhook
from producer.dedupe import Deduper, build_deduper
from producer.errors import Rejection
from producer.providers import build_providers
from producer.publisher import Publisher
from schemas.serializer import build_serializer

_CLIENTS = "hookstream.clients"  # key in app.extensions: what `close` closes
_SERIALIZER = "hookstream.serializer"  # key in app.extensions: what `connect` warms up


def create_app(
    settings: Settings, publisher: Publisher | None = None, deduper: Deduper | None = None
) -> Flask:
    """Raises `ConfigError` when no provider has a secret: the producer fails closed."""
    providers = build_providers(settings)
    publisher = publisher or Publisher(settings)
    deduper = deduper or build_deduper(settings)
    serializer = build_serializer(settings)  # the registry is asked on first use, per worker
    receiver = webhook.Receiver(providers, publisher, deduper, settings.max_body_bytes, serializer)
    app = Flask("producer", static_folder=None)
    app.extensions[_CLIENTS] = (publisher, deduper)
    app.extensions[_SERIALIZER] = serializer
    app.register_blueprint(webhook.build_blueprint(receiver))
    app.register_blueprint(ops.build_blueprint(settings, publisher, sorted(providers), serializer, deduper))
    app.register_error_handler(Rejection, _refused)
    app.register_error_handler(HTTPException, lambda exc: _refused(Rejection.from_http(exc)))
    metrics.create_known_series()
    return app


def connect(app: Flask) -> None:
    """Start the worker's Kafka client now, without waiting for it: the first webhooks then do
    not also pay for connecting and the idempotent producer's id (gunicorn's `post_worker_init`)."""
    publisher, _ = app.extensions[_CLIENTS]
    publisher.connect()
    # The schema id too (registry framing), waited for: every worker has it before its first
    # webhook, not only the one the readiness probe reached. An unreachable registry costs at
    # most the client's timeout here; the worker then serves and answers 503 until it has it.
    app.extensions[_SERIALIZER].ready()


def close(app: Flask) -> None:
    """Deliver what is still queued, drop the Kafka client, close the dedupe store (a worker's
    graceful stop)."""
    publisher, deduper = app.extensions[_CLIENTS]
    publisher.close()
    deduper.close()


def app_from_env() -> Flask:
    """What a gunicorn worker loads: settings from the environment, JSON logs to stderr."""
    configure_logging()
    return create_app(Settings.from_env())


def _refused(rejection: Rejection) -> Response:
    g.rejection = rejection.code  # the `reason` label, counted with the answer
    return rejection.response()
