import re
from pathlib import Path

import pytest

from hookstream.errors import ConfigError
from hookstream.kafka import ConsumerConfig, ProducerConfig, check_passthrough
from hookstream.settings import Settings

CONFIGURATION = Path(__file__).parents[3] / "docs" / "configuration.md"


def test_producer_is_durable_and_carries_security_settings() -> None:
    settings = Settings.from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL": "SSL"}
    )
    conf = ProducerConfig.from_settings(settings, linger_ms=7).as_librdkafka()
    assert conf["bootstrap.servers"] == "k:9092"
    assert conf["security.protocol"] == "SSL"
    assert conf["acks"] == "all"
    assert conf["enable.idempotence"] is True
    assert conf["linger.ms"] == 7


def test_consumer_stores_offsets_only_when_told() -> None:
    conf = ConsumerConfig.from_settings(Settings(), "indexer").as_librdkafka()
    assert conf["group.id"] == "indexer"
    assert conf["enable.auto.offset.store"] is False
    assert conf["auto.offset.reset"] == "earliest"


def test_environment_tunes_batching_but_not_durability() -> None:
    settings = Settings.from_env(
        {
            "HOOKSTREAM_LIBRDKAFKA_LINGER_MS": "10",
            "HOOKSTREAM_LIBRDKAFKA_COMPRESSION_TYPE": "zstd",
            "HOOKSTREAM_LIBRDKAFKA_ACKS": "1",
            "HOOKSTREAM_LIBRDKAFKA_ENABLE_IDEMPOTENCE": "false",
        }
    )
    conf = ProducerConfig.from_settings(settings).as_librdkafka()
    assert conf["linger.ms"] == "10"
    assert conf["compression.type"] == "zstd"
    assert conf["acks"] == "all"
    assert conf["enable.idempotence"] is True


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOOKSTREAM_LIBRDKAFKA_NO_SUCH_THING": "1"}, "HOOKSTREAM_LIBRDKAFKA_NO_SUCH_THING"),
        (
            {"HOOKSTREAM_LIBRDKAFKA_LINGER_MS": "soon", "HOOKSTREAM_LIBRDKAFKA_CLIENT_RACK": "a"},
            "HOOKSTREAM_LIBRDKAFKA_LINGER_MS",
        ),
        # Valid alone, refused beside the locked enable.idempotence.
        ({"HOOKSTREAM_LIBRDKAFKA_MAX_IN_FLIGHT": "20"}, "HOOKSTREAM_LIBRDKAFKA_MAX_IN_FLIGHT"),
        # Only a consumer refuses this one.
        ({"HOOKSTREAM_LIBRDKAFKA_GROUP_PROTOCOL": "nonsense"}, "HOOKSTREAM_LIBRDKAFKA_GROUP_PROTOCOL"),
    ],
)
def test_a_property_librdkafka_refuses_fails_naming_only_its_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_passthrough(Settings.from_env(env))
    message = str(info.value)
    assert message.startswith(f"{named}: librdkafka refuses it: ")
    assert message.count("HOOKSTREAM_LIBRDKAFKA_") == 1
    assert "\n" not in message


def test_a_refused_combination_names_every_variable_in_it() -> None:
    env = {
        "HOOKSTREAM_LIBRDKAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem",
        "HOOKSTREAM_LIBRDKAFKA_CLIENT_RACK": "a",
    }
    alone = Settings.from_env(env)
    check_passthrough(alone)  # a CA file is only read when TLS is on
    with pytest.raises(ConfigError, match=r"ssl\.ca\.location") as info:
        check_passthrough(Settings.from_env({**env, "HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL": "SSL"}))
    assert str(info.value).startswith(
        "HOOKSTREAM_LIBRDKAFKA_SSL_CA_LOCATION, HOOKSTREAM_LIBRDKAFKA_CLIENT_RACK, "
        "HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL: librdkafka refuses it: "
    )


def test_accepted_properties_and_none_at_all_pass() -> None:
    check_passthrough(Settings())
    check_passthrough(
        Settings.from_env(
            {"HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL": "SSL", "HOOKSTREAM_LIBRDKAFKA_LINGER_MS": "5"}
        )
    )


def test_no_project_setting_reaches_librdkafka() -> None:
    # The settings that once leaked: HOOKSTREAM_KAFKA_HOME became librdkafka's "home", and
    # ..._DELIVERY_TIMEOUT_MS its delivery.timeout.ms.
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        "HOOKSTREAM_KAFKA_HOME": "/tmp/kafka",
        "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": "3",
        "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_MS": "5",
        "HOOKSTREAM_DATA_DIR": "/tmp/data",
    }
    settings = Settings.from_env(env)
    assert settings.kafka_common() == {"bootstrap.servers": "k:9092"}
    check_passthrough(settings)
    conf = ProducerConfig.from_settings(settings).as_librdkafka()
    assert conf["delivery.timeout.ms"] == ProducerConfig.delivery_timeout_ms


def test_no_documented_setting_uses_the_librdkafka_prefix() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION.read_text(encoding="utf-8")))
    assert "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S" in documented  # the pattern finds the table
    assert [name for name in documented if name.startswith("HOOKSTREAM_LIBRDKAFKA_")] == []
