from pathlib import Path

import pytest

from hookstream.errors import ConfigError
from hookstream.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.topic == "fastio-events"
    assert settings.dlq_topic == "fastio-dlq"
    assert settings.data_dir == Path("./data")
    assert settings.secrets.enabled() == ()


def test_secret_lists_are_split_for_rotation() -> None:
    settings = Settings.from_env({"FASTIO_WEBHOOK_SECRET": " new , old ,"})
    assert settings.secrets.fastio == ("new", "old")
    assert settings.secrets.enabled() == ("fastio",)


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    settings = Settings.from_env({"GITHUB_WEBHOOK_SECRET_FILE": str(secret)})
    assert settings.secrets.github == ("s3cret",)


def test_secret_and_file_together_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"STRIPE_WEBHOOK_SECRET": "a", "STRIPE_WEBHOOK_SECRET_FILE": "b"})
    assert (
        str(refused.value)
        == "STRIPE_WEBHOOK_SECRET and STRIPE_WEBHOOK_SECRET_FILE are both set; set only one of them"
    )


def test_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"FASTIO_WEBHOOK_SECRET_FILE": str(missing)})
    assert (
        str(refused.value)
        == f"FASTIO_WEBHOOK_SECRET_FILE={missing} cannot be read: No such file or directory"
    )


def test_secrets_never_appear_in_repr() -> None:
    settings = Settings.from_env(
        {"FASTIO_WEBHOOK_SECRET": "topsecret", "HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD": "pw"}
    )
    assert "topsecret" not in repr(settings)
    assert "pw" not in repr(settings)


def test_kafka_security_settings_pass_through(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("hunter2")
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093",
            "HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "HOOKSTREAM_LIBRDKAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE": str(password),
            "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": "3",
        }
    )
    assert settings.kafka_common() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.password": "hunter2",
    }
    assert settings.delivery_timeout_s == 3.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HOOKSTREAM_MAX_BODY_BYTES": "big"}, "HOOKSTREAM_MAX_BODY_BYTES='big' is not a whole number"),
        ({"HOOKSTREAM_MAX_BODY_BYTES": "0"}, "HOOKSTREAM_MAX_BODY_BYTES=0 must be at least 1"),
        (
            {"HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": "x"},
            "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S='x' is not a number",
        ),
        ({"HOOKSTREAM_DEDUPE_WINDOW_S": "-1"}, "HOOKSTREAM_DEDUPE_WINDOW_S=-1.0 must be at least 0.0"),
        ({"HOOKSTREAM_METRICS_PORT": "-1"}, "HOOKSTREAM_METRICS_PORT=-1 must be at least 0"),
        (
            {"HOOKSTREAM_FASTIO_SIGNATURE_FORMAT": "md5"},
            "HOOKSTREAM_FASTIO_SIGNATURE_FORMAT='md5' must be one of: auto, hex, sha256, timestamped",
        ),
    ],
)
def test_malformed_values_are_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == message


def test_numbers_accept_their_minimum_and_empty_means_the_default() -> None:
    at_minimum = Settings.from_env(
        {"HOOKSTREAM_MAX_BODY_BYTES": "1", "HOOKSTREAM_DEDUPE_WINDOW_S": "0", "HOOKSTREAM_METRICS_PORT": "0"}
    )
    assert (at_minimum.max_body_bytes, at_minimum.dedupe_window_s, at_minimum.metrics_port) == (1, 0.0, 0)
    assert Settings.from_env({"HOOKSTREAM_MAX_BODY_BYTES": ""}).max_body_bytes == Settings.max_body_bytes


def test_settings_are_immutable() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.topic = "other"  # type: ignore[misc]
