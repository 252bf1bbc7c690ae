import re
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


# Every single-valued variable: the field it sets, a value to set, and what the field then holds.
VARIABLES: dict[str, tuple[str, str, object]] = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka_bootstrap_servers", "k1:9093", "k1:9093"),
    "HOOKSTREAM_TOPIC": ("topic", "events", "events"),
    "HOOKSTREAM_DLQ_TOPIC": ("dlq_topic", "dead", "dead"),
    "HOOKSTREAM_DATA_DIR": ("data_dir", "/srv/data", Path("/srv/data")),
    "HOOKSTREAM_REDIS_URL": ("redis_url", "redis://r:6379/0", "redis://r:6379/0"),
    "HOOKSTREAM_REDIS_PASSWORD": ("redis_password", "rp", "rp"),
    "HOOKSTREAM_OPENSEARCH_URL": ("opensearch_url", "http://o:9200", "http://o:9200"),
    "HOOKSTREAM_OPENSEARCH_INDEX": ("opensearch_index", "files", "files"),
    "HOOKSTREAM_OPENSEARCH_USER": ("opensearch_user", "ou", "ou"),
    "HOOKSTREAM_OPENSEARCH_PASSWORD": ("opensearch_password", "op", "op"),
    "HOOKSTREAM_OPENSEARCH_CA_FILE": ("opensearch_ca_file", "/ca.pem", Path("/ca.pem")),
    "HOOKSTREAM_SCHEMA_REGISTRY_URL": ("schema_registry_url", "http://s:8080", "http://s:8080"),
    "HOOKSTREAM_SCHEMA_REGISTRY_USER": ("schema_registry_user", "su", "su"),
    "HOOKSTREAM_SCHEMA_REGISTRY_PASSWORD": ("schema_registry_password", "sp", "sp"),
    "HOOKSTREAM_MAX_BODY_BYTES": ("max_body_bytes", "4096", 4096),
    "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": ("delivery_timeout_s", "3.5", 3.5),
    "HOOKSTREAM_DEDUPE_WINDOW_S": ("dedupe_window_s", "30", 30.0),
    "HOOKSTREAM_FASTIO_SIGNATURE_FORMAT": ("fastio_signature_format", "hex", "hex"),
    "HOOKSTREAM_TIMESTAMP_TOLERANCE_S": ("timestamp_tolerance_s", "60", 60),
    "HOOKSTREAM_PARTITION_KEY_FIELD": ("partition_key_field", "repo.id", "repo.id"),
    "PROMETHEUS_MULTIPROC_DIR": ("metrics_multiprocess_dir", "/tmp/m", Path("/tmp/m")),
    "HOOKSTREAM_METRICS_PORT": ("metrics_port", "9200", 9200),
    "HOOKSTREAM_RETRY_MAX_ATTEMPTS": ("retry_max_attempts", "2", 2),
    "HOOKSTREAM_RETRY_MAX_SECONDS": ("retry_max_seconds", "5", 5.0),
    "HOOKSTREAM_NOTIFIER_RULES": ("notifier_rules", "/rules.yml", Path("/rules.yml")),
    "HOOKSTREAM_NOTIFY_URL": ("notify_url", "http://n/hook", "http://n/hook"),
    "HOOKSTREAM_ARCHIVE_URL": ("archive_url", "s3://b/p", "s3://b/p"),
    "HOOKSTREAM_ARCHIVE_MAX_BYTES": ("archive_max_bytes", "2048", 2048),
    "HOOKSTREAM_ARCHIVE_MAX_AGE_S": ("archive_max_age_s", "1.5", 1.5),
    "HOOKSTREAM_CONSUMER_GROUP_PREFIX": ("consumer_group_prefix", "blue-", "blue-"),
    "HOOKSTREAM_CONSUMER_BATCH_SIZE": ("consumer_batch_size", "10", 10),
    "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": ("consumer_session_timeout_ms", "6000", 6000),
    "HOOKSTREAM_BREAKER_WINDOW": ("breaker_window", "10", 10),
    "HOOKSTREAM_BREAKER_RATIO": ("breaker_ratio", "0.25", 0.25),
}
CONFIGURATION = Path(__file__).parents[3] / "docs" / "configuration.md"


@pytest.mark.parametrize("variable", sorted(VARIABLES))
def test_each_variable_sets_its_field_and_nothing_else(variable: str) -> None:
    field, value, expected = VARIABLES[variable]
    settings = Settings.from_env({variable: value})
    assert getattr(settings, field) == expected
    changed = {
        name for name in VARIABLES.values() if getattr(settings, name[0]) != getattr(Settings(), name[0])
    }
    assert changed == {VARIABLES[variable]}


def test_the_documented_defaults_are_the_defaults() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|", CONFIGURATION.read_text(encoding="utf-8"), re.M)
    documented = {variable: default for variable, default in rows if variable in VARIABLES}
    assert set(documented) == set(VARIABLES)  # every variable documented, with its default
    defaults = Settings.from_env({})
    for variable, default in documented.items():
        field = VARIABLES[variable][0]
        if default == "—":
            assert getattr(defaults, field) in (None, ""), variable
        elif default.startswith("`"):  # set to the documented default, or unset: the same
            assert getattr(Settings.from_env({variable: default.strip("`")}), field) == getattr(
                defaults, field
            )
    assert Settings.from_env({}) == Settings()


# The smallest value each bounded variable takes; below it, one line names the variable.
MINIMUMS = {
    "HOOKSTREAM_MAX_BODY_BYTES": "1",
    "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": "0.1",
    "HOOKSTREAM_TIMESTAMP_TOLERANCE_S": "1",
    "HOOKSTREAM_RETRY_MAX_ATTEMPTS": "1",
    "HOOKSTREAM_ARCHIVE_MAX_BYTES": "1024",
    "HOOKSTREAM_ARCHIVE_MAX_AGE_S": "0.1",
    "HOOKSTREAM_CONSUMER_BATCH_SIZE": "1",
    "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": "1000",
    "HOOKSTREAM_BREAKER_WINDOW": "1",
}


@pytest.mark.parametrize("variable", sorted(MINIMUMS))
def test_each_bound_accepts_its_minimum_and_refuses_below_it(variable: str) -> None:
    minimum = MINIMUMS[variable]
    field = VARIABLES[variable][0]
    assert getattr(Settings.from_env({variable: minimum}), field) == float(minimum)
    below = str(float(minimum) / 2) if "." in minimum else str(int(minimum) - 1)
    with pytest.raises(ConfigError, match=f"^{variable}=.* must be at least {minimum}$"):
        Settings.from_env({variable: below})


@pytest.mark.parametrize("provider", ["fastio", "github", "stripe", "standard"])
def test_each_provider_secret_enables_only_that_provider(provider: str) -> None:
    settings = Settings.from_env({f"{provider.upper()}_WEBHOOK_SECRET": "s"})
    assert settings.secrets.enabled() == (provider,)
    assert getattr(settings.secrets, provider) == ("s",)


def test_no_password_appears_in_repr() -> None:
    passwords = {
        "HOOKSTREAM_REDIS_PASSWORD": "redis-pw",
        "HOOKSTREAM_OPENSEARCH_PASSWORD": "search-pw",
        "HOOKSTREAM_SCHEMA_REGISTRY_PASSWORD": "registry-pw",
    }
    shown = repr(Settings.from_env(passwords))
    assert [pw for pw in passwords.values() if pw in shown] == []
    assert (
        repr(Settings.from_env({"FASTIO_WEBHOOK_SECRET": "s"}).secrets)
        == "ProviderSecrets(enabled=('fastio',))"
    )


def test_a_bare_librdkafka_prefix_names_no_property() -> None:
    assert Settings.from_env({"HOOKSTREAM_LIBRDKAFKA_": "x"}).kafka_extra == {}
