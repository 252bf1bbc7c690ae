"""Why Kafka refused a client, in one line: rejected credentials, an untrusted certificate, or a
missing ACL (which operation on which resource).

librdkafka does not fail a request when the TLS handshake or the SASL exchange is refused: it
logs the cause and keeps retrying until the request times out with "Broker transport failure".
A `ConnectionWatch` given to the client as its `logger` keeps that cause (and keeps librdkafka's
repeated lines off stderr), so the timeout can be reported with the reason behind it. The
lines reach the logger when the client is polled (`poll()`, `consume()`): poll before asking.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping

from confluent_kafka import KafkaError

from hookstream.errors import HookstreamError
from hookstream.settings import KafkaConf

_AUTHORIZATION_FAILURES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}
_PREFIX = "HOOKSTREAM_LIBRDKAFKA_"
# What a message may say about a client: who it is and how it connects, never a secret.
_IDENTITY_KEYS = ("security.protocol", "sasl.mechanism", "sasl.username", "ssl.certificate.location")
_ids = itertools.count(1)


class KafkaAccessError(HookstreamError):
    """Kafka refused who the client is (credentials, certificate) or what it asked (an ACL)."""


def principal(conf: Mapping[str, object]) -> str:
    """Who the client is to Kafka, as an ACL names it (never its secret)."""
    user = conf.get("sasl.username")
    if user:
        return f"User:{user}"
    if conf.get("ssl.certificate.location"):
        return f"the user named by the CN of {conf['ssl.certificate.location']}"
    return "User:ANONYMOUS"


def _cause(message: str, conf: Mapping[str, object]) -> str | None:
    lowered = message.lower()
    if "sasl authentication error" in lowered or "authentication failed" in lowered:
        return (
            f"Kafka rejected the credentials of {principal(conf)} "
            f"({conf.get('sasl.mechanism', 'SASL')}): check {_PREFIX}SASL_USERNAME and "
            f"{_PREFIX}SASL_PASSWORD_FILE"
        )
    if "certificate verify failed" in lowered:
        return (
            "the broker's TLS certificate is not trusted: set "
            f"{_PREFIX}SSL_CA_LOCATION to the CA certificate that signed it"
        )
    if "ssl" in lowered and ("alert" in lowered or "handshake" in lowered):
        return (
            "Kafka refused the TLS handshake (a client certificate it does not trust, or none): "
            f"check {_PREFIX}SSL_CERTIFICATE_LOCATION and {_PREFIX}SSL_KEY_LOCATION"
        )
    if "disconnected while requesting apiversion" in lowered or "incorrect security.protocol" in lowered:
        return (
            f"Kafka closed the connection at once: {_PREFIX}SECURITY_PROTOCOL "
            f"({conf.get('security.protocol', 'PLAINTEXT')}) may not match the broker's listener"
        )
    return None


class ConnectionWatch(logging.Handler):
    """Keeps the latest reason librdkafka gave for failing to connect; with `report`, also logs
    each new reason there once (a long-running process's JSON log), not every retry."""

    def __init__(self, conf: Mapping[str, object], report: logging.Logger | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.conf = {key: conf[key] for key in _IDENTITY_KEYS if key in conf}
        self.cause: str | None = None
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        cause = _cause(record.getMessage(), self.conf)
        if cause is not None and cause != self.cause and self._report is not None:
            self._report.error("kafka refused the connection", extra={"fields": {"cause": cause}})
        if cause is not None:
            self.cause = cause

    def logger(self) -> logging.Logger:
        """A logger of its own for one client: librdkafka's lines stop here, never on stderr."""
        log = logging.getLogger(f"hookstream.librdkafka.{next(_ids)}")
        log.propagate = False
        log.setLevel(logging.WARNING)
        log.handlers = [self]
        return log


def watched(conf: KafkaConf, report: logging.Logger | None = None) -> tuple[KafkaConf, ConnectionWatch]:
    """`conf` with a logger that notes why connecting failed; the watch to ask afterwards."""
    watch = ConnectionWatch(conf, report)
    return {**conf, "logger": watch.logger()}, watch  # type: ignore[dict-item]


def cause_of(error: KafkaError, conf: Mapping[str, object]) -> str | None:
    """For an error a client's `error_cb` receives (_AUTHENTICATION, _SSL, _TRANSPORT), the line
    saying Kafka refused who the client is, if it did; None for anything else (Kafka down)."""
    if error.code() not in (KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError._TRANSPORT):
        return None
    return _cause(error.str(), conf)


def denied(error: KafkaError, operation: str, resource: str, conf: Mapping[str, object]) -> str | None:
    """For an authorization failure, the line that names what is missing; else None."""
    if error.code() not in _AUTHORIZATION_FAILURES:
        return None
    return (
        f"Kafka denied {operation} on {resource} to {principal(conf)} ({error.name()}): "
        "an operator must grant it (docs/security.md)"
    )


def explain(
    error: KafkaError, what: str, watch: ConnectionWatch | None, needs: tuple[str, str] | None = None
) -> str:
    """One line for a failed request: the missing ACL when `needs` (operation, resource) names
    what the request wanted, else why connecting failed, else Kafka's own words."""
    conf = watch.conf if watch is not None else {}
    if needs is not None:
        line = denied(error, *needs, conf)
        if line is not None:
            return line
    cause = watch.cause if watch is not None else None
    return f"{what}: {cause or error.str()}"
