"""One line for each way Kafka refuses a client, naming the setting to fix, never a secret."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError

from hookstream.kafka_access import cause_of, denied, explain, principal, watched

SCRAM: dict[str, str | int | float | bool] = {
    "bootstrap.servers": "localhost:9092",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "lag",
    "sasl.password": "hunter2-the-password",
}
BAD_PASSWORD = (
    "FAIL [rdkafka#producer-1] [thrd:sasl_ssl://k:9092/bootstrap]: sasl_ssl://k:9092/bootstrap: "
    "SASL authentication error: Authentication failed during authentication due to invalid credentials"
)
UNTRUSTED = (
    "FAIL [rdkafka#producer-1] sasl_ssl://k:9092/bootstrap: SSL handshake failed: error:0A000086:SSL "
    "routines::certificate verify failed: broker certificate could not be verified"
)
CLIENT_CERT_REFUSED = (
    "FAIL ssl://k:9094/bootstrap: SSL handshake failed: "
    "ssl/record/rec_layer_s3.c: sslv3 alert bad certificate"
)


def _log(conf: dict[str, str | int | float | bool], *messages: str) -> str | None:
    with_logger, watch = watched(conf)
    logger = with_logger["logger"]
    assert isinstance(logger, logging.Logger)
    for message in messages:
        logger.error(message)
    return watch.cause


def test_a_rejected_password_names_the_user_and_the_settings_never_the_password() -> None:
    cause = _log(SCRAM, "some other line", BAD_PASSWORD)
    assert cause is not None
    assert "Kafka rejected the credentials of User:lag (SCRAM-SHA-512)" in cause
    assert "HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE" in cause
    assert "hunter2" not in cause


def test_an_untrusted_broker_and_a_refused_client_certificate_are_told_apart() -> None:
    assert "HOOKSTREAM_LIBRDKAFKA_SSL_CA_LOCATION" in (_log(SCRAM, UNTRUSTED) or "")
    mtls: dict[str, str | int | float | bool] = {
        "security.protocol": "SSL",
        "ssl.certificate.location": "/run/secrets/kafka/tls.crt",
    }
    cause = _log(mtls, CLIENT_CERT_REFUSED) or ""
    assert "Kafka refused the TLS handshake" in cause and "SSL_CERTIFICATE_LOCATION" in cause


def test_the_watch_keeps_no_secret_and_its_lines_stay_off_stderr(capsys) -> None:  # type: ignore[no-untyped-def]
    with_logger, watch = watched(SCRAM)
    assert "sasl.password" not in watch.conf
    with_logger["logger"].error(BAD_PASSWORD)  # type: ignore[union-attr]
    assert capsys.readouterr().err == ""


def test_a_missing_acl_names_operation_resource_and_principal() -> None:
    error = KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)
    line = denied(error, "DESCRIBE", "group notifier", SCRAM)
    assert line is not None and line.startswith("Kafka denied DESCRIBE on group notifier to User:lag")
    assert denied(KafkaError(KafkaError._TIMED_OUT), "DESCRIBE", "group notifier", SCRAM) is None


def test_explain_prefers_the_missing_acl_then_the_refusal_then_kafkas_words() -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT, "Local: Timed out")
    assert explain(timed_out, "cannot list", None) == "cannot list: Local: Timed out"
    with_logger, watch = watched(SCRAM)
    with_logger["logger"].error(BAD_PASSWORD)  # type: ignore[union-attr]
    assert "rejected the credentials" in explain(timed_out, "cannot list", watch)
    refused = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert "denied CREATE on topic t" in explain(refused, "cannot create", watch, ("CREATE", "topic t"))


def test_principal_of_a_certificate_and_of_nobody() -> None:
    assert principal({"ssl.certificate.location": "/x/producer.pem"}).endswith("/x/producer.pem")
    assert principal({}) == "User:ANONYMOUS"


def test_cause_of_an_error_callback_error() -> None:
    auth = KafkaError(KafkaError._AUTHENTICATION, BAD_PASSWORD)
    assert "User:lag" in (cause_of(auth, SCRAM) or "")
    assert cause_of(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"), SCRAM) is None
