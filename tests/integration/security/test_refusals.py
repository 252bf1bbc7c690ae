"""A client Kafka refuses says why in one line: a wrong password, a broker certificate it does not
trust, a client certificate the broker does not trust. The producer answers /readyz 503 naming
the cause, never hangs and never answers a webhook 2xx. No log shows the secrets involved."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests

from hookstream_dev.tls import CertificateAuthority
from tests.faults.harness.load import post
from tests.faults.harness.logscan import forbidden_strings, scan_files, secret_file_strings
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook
from tests.fixtures.secure_kafka import SECURE_DLQ, SECURE_TOPIC, SecureKafka
from tests.integration.security.helpers import one_line_error, role_env, run_as

pytestmark = pytest.mark.timeout(600)

WRONG_PASSWORD = "not-the-password-0123456789"


def _wrong_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "wrong.password"
    path.write_text(WRONG_PASSWORD + "\n")
    return path


@pytest.mark.parametrize(
    "args",
    [("lag",), ("topics", "create"), ("offsets", "reset", "--group", "indexer", "--to-latest")],
    ids=["lag", "topics-create", "offsets-reset"],
)
def test_a_wrong_password_is_one_line(
    secure_kafka: SecureKafka, tmp_path: Path, args: tuple[str, ...]
) -> None:
    role = args[0]  # each command's own role has its name
    env = role_env(
        secure_kafka, role, HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE=str(_wrong_password_file(tmp_path))
    )
    result = run_as(env, *args, log=tmp_path / "cli.log")
    line = one_line_error(result)
    assert f"Kafka rejected the credentials of User:{role}" in line
    assert "HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE" in line
    _assert_no_secret_in([tmp_path / "cli.log"], secure_kafka, [WRONG_PASSWORD])


def test_an_untrusted_broker_certificate_is_one_line(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    stranger = CertificateAuthority(tmp_path / "other-ca", name="someone else's CA")
    env = role_env(secure_kafka, "topics", HOOKSTREAM_LIBRDKAFKA_SSL_CA_LOCATION=str(stranger.cert_file))
    line = one_line_error(run_as(env, "topics", "create", log=tmp_path / "cli.log"))
    assert "the broker's TLS certificate is not trusted" in line
    assert "HOOKSTREAM_LIBRDKAFKA_SSL_CA_LOCATION" in line


def test_a_client_certificate_the_broker_does_not_trust_is_one_line(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    forged = CertificateAuthority(tmp_path / "forger").issue("lag")  # CN=lag, but not the cluster's CA
    env = role_env(
        secure_kafka,
        "lag",
        mtls=True,
        HOOKSTREAM_LIBRDKAFKA_SSL_CERTIFICATE_LOCATION=str(forged.cert),
        HOOKSTREAM_LIBRDKAFKA_SSL_KEY_LOCATION=str(forged.key),
    )
    line = one_line_error(run_as(env, "lag", log=tmp_path / "cli.log"))
    assert "Kafka refused the TLS handshake" in line
    _assert_no_secret_in([tmp_path / "cli.log"], secure_kafka, secret_file_strings([forged.key]))


def test_the_producer_with_a_wrong_password_is_not_ready_and_accepts_nothing(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    keys = SigningKeys.generate()
    pipeline = Pipeline(tmp_path, "unused", SECURE_TOPIC, SECURE_DLQ, keys)
    env = {
        **secure_kafka.env("producer"),
        "HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE": str(_wrong_password_file(tmp_path)),
    }
    try:
        producer = pipeline.producer(workers=1, **env)  # alive: /healthz answers
        answers: list[tuple[int, str]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = requests.get(producer.base_url + "/readyz", timeout=10)  # never a hang
            assert time.monotonic() - started < 10
            answers.append((response.status_code, response.json().get("detail", "")))
            if "rejected the credentials" in answers[-1][1]:
                break
            time.sleep(0.5)
        assert {status for status, _ in answers} == {503}, answers
        assert "Kafka rejected the credentials of User:producer" in answers[-1][1], answers[-3:]

        hooks = [fastio_webhook(keys.fastio, n) for n in range(3)]
        with requests.Session() as session:
            statuses = [post(session, producer.base_url, hook, 30).status for hook in hooks]
        assert not [s for s in statuses if s is not None and 200 <= s < 300], statuses
        assert set(statuses) == {503}, statuses
    finally:
        pipeline.stop()
    _assert_no_secret_in(pipeline.log_files(), secure_kafka, [WRONG_PASSWORD, *keys.all()])


def _assert_no_secret_in(files: list[Path], secure: SecureKafka, extra: list[str]) -> None:
    secrets = [*extra, *secret_file_strings(secure.secret_files())]
    leaks = scan_files(files, forbidden_strings(secrets, []))
    assert not leaks, f"{len(leaks)} leaks, e.g.\n" + "\n".join(map(str, leaks[:8]))


def _member_error(result: subprocess.CompletedProcess[str]) -> str:
    """A member that stops logs JSON lines, then the CLI's one line; that line."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("hookstream:")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-2000:]
    assert not [line for line in result.stderr.splitlines() if line.startswith("%")], "librdkafka's lines"
    return errors[0]


def test_a_group_member_with_a_wrong_password_stops_at_start_with_one_line(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    env = role_env(
        secure_kafka,
        "indexer",
        HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE=str(_wrong_password_file(tmp_path)),
        HOOKSTREAM_METRICS_PORT="0",
        HOOKSTREAM_DATA_DIR=str(tmp_path / "data"),
    )
    line = _member_error(run_as(env, "consume", "indexer", log=tmp_path / "cli.log", timeout_s=120))
    assert "group indexer cannot consume: Kafka rejected the credentials of User:indexer" in line
    _assert_no_secret_in([tmp_path / "cli.log"], secure_kafka, [WRONG_PASSWORD])


def test_a_member_of_a_group_its_user_may_not_read_names_the_missing_acl(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    env = role_env(
        secure_kafka,
        "indexer",
        HOOKSTREAM_METRICS_PORT="0",
        HOOKSTREAM_DATA_DIR=str(tmp_path / "data"),
        HOOKSTREAM_NOTIFY_URL="http://127.0.0.1:9/unused",
    )
    line = _member_error(run_as(env, "consume", "notifier", log=tmp_path / "cli.log", timeout_s=120))
    assert "Kafka denied READ on group notifier to User:indexer" in line
