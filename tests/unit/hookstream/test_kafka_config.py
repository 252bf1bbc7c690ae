from hookstream.kafka import ConsumerConfig, ProducerConfig
from hookstream.settings import Settings


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
