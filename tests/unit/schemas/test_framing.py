"""Both framings without a registry: the own framing needs none; a Confluent-framed record
without a configured registry is poison with a way out, never a crash."""

from dataclasses import replace

import pytest

from hookstream.errors import ConfigError, SchemaError
from hookstream.settings import Settings
from schemas import codec, registry
from schemas.decoder import build_decoder
from schemas.serializer import OwnFraming, build_serializer
from tests.unit.schemas.test_codec import make_envelope


def test_without_a_registry_the_own_framing_is_written_and_read() -> None:
    serializer = build_serializer(Settings())
    assert isinstance(serializer, OwnFraming)
    assert serializer.ready() == (True, "own framing")
    value = serializer.encode(make_envelope())
    assert value[0] == codec.MAGIC
    assert build_decoder(Settings()).decode(value) == make_envelope()


def test_a_confluent_record_without_a_registry_is_poison_that_says_what_to_set() -> None:
    with pytest.raises(SchemaError, match="HOOKSTREAM_SCHEMA_REGISTRY_URL"):
        build_decoder(Settings()).decode(b"\x00\x00\x00\x00\x07" + b"\x02")


@pytest.mark.parametrize(("value", "reason"), [(b"\x00\x00\x00\x00\x07", "too short"), (b"", "magic")])
def test_short_values_are_poison(value: bytes, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        build_decoder(Settings()).decode(value)


def test_basic_auth_needs_a_password() -> None:
    settings = replace(Settings(), schema_registry_url="http://registry:8081", schema_registry_user="u")
    with pytest.raises(ConfigError, match="HOOKSTREAM_SCHEMA_REGISTRY_PASSWORD_FILE"):
        registry.client(settings)
    with_password = replace(settings, schema_registry_password="p")
    assert registry.client(with_password).config()["basic.auth.user.info"] == "u:p"


def test_the_subject_follows_the_topic_name_strategy() -> None:
    assert registry.subject("fastio-events") == "fastio-events-value"
