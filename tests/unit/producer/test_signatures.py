"""Every signature form: published vectors, round trips, and each way a signature is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from standardwebhooks.webhooks import Webhook

from hookstream.errors import ConfigError
from hookstream.settings import ProviderSecrets, Settings
from producer.errors import SignatureError
from producer.providers import PROVIDERS as PROVIDER_CLASSES
from producer.providers import build_providers, sign
from producer.providers.base import Headers, ParsedEvent, Provider
from producer.providers.fastio import FastioProvider
from producer.providers.github import GithubProvider
from producer.providers.standard import StandardProvider
from producer.providers.stripe import StripeProvider

NOW = 1_700_000_000
BODY = b'{"event_id":"evt_1","event":"workspace_storage_file_added","workspace_id":"ws_1"}'


def code_of(provider, body: bytes, headers: dict[str, str], now: float = NOW) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError) as refused:
        provider.verify(body, headers, now)
    return refused.value.code


# -- published vectors ------------------------------------------------------------------------


def test_github_documentation_vector() -> None:
    # docs.github.com "Validating webhook deliveries": this secret and payload give this digest.
    provider = GithubProvider(("It's a Secret to Everybody",))
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert provider.verify(b"Hello, World!", {"X-Hub-Signature-256": header}, NOW) == "github"
    assert sign("github", b"Hello, World!", "It's a Secret to Everybody")["X-Hub-Signature-256"] == header


def test_standard_webhooks_specification_vector() -> None:
    # The Standard Webhooks specification's (and its reference libraries') published vector.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    assert StandardProvider((secret,)).verify(body, headers, 1614265330 + 10) == "standard"
    signed = sign("standard", body, secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    assert signed["webhook-signature"] == headers["webhook-signature"]


def test_stripe_vector_computed_independently() -> None:
    # Stripe publishes the scheme, not a vector: this digest was computed with
    # `printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test`.
    header = "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
    assert sign("stripe", b'{"id":"evt_1"}', "whsec_test", timestamp=NOW)["Stripe-Signature"] == header
    verifier = StripeProvider(("whsec_test",))
    assert verifier.verify(b'{"id":"evt_1"}', {"Stripe-Signature": header}, NOW) == "stripe"


# -- Fast.io: three forms ---------------------------------------------------------------------


@pytest.mark.parametrize("form", ["hex", "sha256", "timestamped"])
def test_fastio_accepts_each_form_in_auto_mode(form: str) -> None:
    headers = sign("fastio", BODY, "s3cret", form=form, timestamp=NOW)
    assert FastioProvider(("s3cret",)).verify(BODY, headers, NOW) == form


def test_fastio_forms_are_what_the_docs_describe() -> None:
    digest = hmac.new(b"s3cret", BODY, hashlib.sha256)
    assert sign("fastio", BODY, "s3cret", form="hex")["X-Fastio-Signature"] == digest.hexdigest()
    assert sign("fastio", BODY, "s3cret", form="sha256")["Fastio-Signature"] == "sha256=" + digest.hexdigest()
    timed = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).digest()
    expected = f"t={NOW},v1={base64.b64encode(timed).decode()}"
    assert sign("fastio", BODY, "s3cret", form="timestamped", timestamp=NOW)["Fastio-Signature"] == expected


def test_fastio_sha256_form_may_come_in_the_x_header_too() -> None:
    value = sign("fastio", BODY, "s3cret", form="sha256")["Fastio-Signature"]
    assert FastioProvider(("s3cret",)).verify(BODY, {"X-Fastio-Signature": value}, NOW) == "sha256"


def test_fastio_hex_is_case_insensitive() -> None:
    value = sign("fastio", BODY, "s3cret", form="hex")["X-Fastio-Signature"].upper()
    assert FastioProvider(("s3cret",)).verify(BODY, {"X-Fastio-Signature": value}, NOW) == "hex"


@pytest.mark.parametrize("pinned", ["hex", "sha256", "timestamped"])
def test_a_pinned_format_refuses_the_other_two(pinned: str) -> None:
    provider = FastioProvider(("s3cret",), signature_format=pinned)
    for form in ("hex", "sha256", "timestamped"):
        headers = sign("fastio", BODY, "s3cret", form=form, timestamp=NOW)
        if form == pinned:
            assert provider.verify(BODY, headers, NOW) == form
        else:
            assert code_of(provider, BODY, headers) == "invalid_signature"


def test_fastio_stale_timestamp_is_refused_with_its_reason() -> None:
    provider = FastioProvider(("s3cret",), tolerance_s=300)
    headers = sign("fastio", BODY, "s3cret", form="timestamped", timestamp=NOW - 301)
    with pytest.raises(SignatureError, match="more than 300s") as refused:
        provider.verify(BODY, headers, NOW)
    assert refused.value.code == "stale_signature"
    future = sign("fastio", BODY, "s3cret", form="timestamped", timestamp=NOW + 301)
    assert code_of(provider, BODY, future) == "stale_signature"
    within = sign("fastio", BODY, "s3cret", form="timestamped", timestamp=NOW - 299)
    assert provider.verify(BODY, within, NOW) == "timestamped"


def test_a_timestamp_moved_after_signing_does_not_verify() -> None:
    value = sign("fastio", BODY, "s3cret", form="timestamped", timestamp=NOW)["Fastio-Signature"]
    moved = value.replace(f"t={NOW}", f"t={NOW + 1}")
    assert code_of(FastioProvider(("s3cret",)), BODY, {"Fastio-Signature": moved}) == "invalid_signature"


# -- every provider: refusals and rotation -----------------------------------------------------

PROVIDERS = {
    "fastio": (FastioProvider, "s3cret"),
    "github": (GithubProvider, "gh-secret"),
    "stripe": (StripeProvider, "whsec_stripe"),
    "standard": (StandardProvider, "whsec_" + base64.b64encode(b"k" * 32).decode()),
}


def _signed(name: str, body: bytes, secret: str) -> dict[str, str]:
    options = {"timestamp": NOW} if name != "github" else {}
    return sign(name, body, secret, **options)


@pytest.mark.parametrize("name", PROVIDERS)
def test_round_trip(name: str) -> None:
    cls, secret = PROVIDERS[name]
    assert cls((secret,)).verify(BODY, _signed(name, BODY, secret), NOW)


@pytest.mark.parametrize("name", PROVIDERS)
def test_missing_signature(name: str) -> None:
    cls, secret = PROVIDERS[name]
    assert code_of(cls((secret,)), BODY, {}) == "missing_signature"


@pytest.mark.parametrize("name", PROVIDERS)
def test_wrong_secret_and_tampered_body(name: str) -> None:
    cls, secret = PROVIDERS[name]
    provider = cls((secret,))
    other = "whsec_" + base64.b64encode(b"x" * 32).decode() if name == "standard" else "not-the-secret"
    assert code_of(provider, BODY, _signed(name, BODY, other)) == "invalid_signature"
    assert code_of(provider, BODY + b" ", _signed(name, BODY, secret)) == "invalid_signature"


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_configured_secret_is_accepted_during_rotation(name: str) -> None:
    cls, secret = PROVIDERS[name]
    old = "whsec_" + base64.b64encode(b"o" * 32).decode() if name == "standard" else "old-secret"
    provider = cls((old, secret))
    assert provider.verify(BODY, _signed(name, BODY, old), NOW)
    assert provider.verify(BODY, _signed(name, BODY, secret), NOW)


@pytest.mark.parametrize("name", ["stripe", "standard"])
def test_timestamped_providers_refuse_stale_signatures(name: str) -> None:
    cls, secret = PROVIDERS[name]
    old = sign(name, BODY, secret, timestamp=NOW - 1000)
    assert code_of(cls((secret,), tolerance_s=300), BODY, old) == "stale_signature"


def test_stripe_accepts_any_of_several_v1_entries() -> None:
    header = sign("stripe", BODY, "whsec_stripe", timestamp=NOW)["Stripe-Signature"]
    t, v1 = header.split(",")
    rolled = f"{t},v1={'0' * 64},{v1},v0=ignored"
    assert StripeProvider(("whsec_stripe",)).verify(BODY, {"Stripe-Signature": rolled}, NOW) == "stripe"


def test_standard_ignores_entries_of_other_versions() -> None:
    _, secret = PROVIDERS["standard"]
    headers = sign("standard", BODY, secret, msg_id="msg_1", timestamp=NOW)
    headers["webhook-signature"] = "v1a,AAAA " + headers["webhook-signature"]
    assert StandardProvider((secret,)).verify(BODY, headers, NOW) == "standard"
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert code_of(StandardProvider((secret,)), BODY, headers) == "invalid_signature"


def test_standard_signatures_are_the_reference_library_s() -> None:
    # The package's own verify (wall clock, five minutes) accepts what `sign` makes now.
    _, secret = PROVIDERS["standard"]
    assert Webhook(secret).verify(BODY, sign("standard", BODY, secret), json_parse=False) is None


def test_a_body_that_is_not_utf8_is_not_what_a_standard_sender_signed() -> None:
    _, secret = PROVIDERS["standard"]
    headers = sign("standard", BODY, secret, timestamp=NOW)
    assert code_of(StandardProvider((secret,)), b"\xff" + BODY, headers) == "invalid_signature"


@pytest.mark.parametrize(
    "secret", ["whsec_not base64!", "whsec_AAAA!"]
)  # the second decodes if "!" is dropped
def test_a_malformed_standard_secret_is_a_config_error(secret: str) -> None:
    with pytest.raises(ConfigError) as refused:
        StandardProvider((secret,))
    assert (
        str(refused.value)
        == "STANDARD_WEBHOOK_SECRET must be whsec_<base64>, as the sender's dashboard shows it"
    )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_needs_all_three_headers(missing: str) -> None:
    _, secret = PROVIDERS["standard"]
    headers = sign("standard", BODY, secret, msg_id="msg_1", timestamp=NOW)
    del headers[missing]
    assert code_of(StandardProvider((secret,)), BODY, headers) == "missing_signature"


def test_standard_message_ids_are_made_fresh_when_not_given() -> None:
    _, secret = PROVIDERS["standard"]
    ids = {sign("standard", BODY, secret)["webhook-id"] for _ in range(2)}
    assert len(ids) == 2 and all(msg_id.startswith("msg_") for msg_id in ids)


def test_non_ascii_signature_headers_are_refused_not_crashed() -> None:
    assert code_of(GithubProvider(("s",)), BODY, {"X-Hub-Signature-256": "sha256=é"}) == "invalid_signature"


def test_sign_rejects_an_unknown_provider() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        sign("gitlab", BODY, "s")


def test_an_unknown_fastio_form_names_the_forms_there_are() -> None:
    with pytest.raises(ValueError) as refused:
        sign("fastio", BODY, "s3cret", form="md5")
    assert str(refused.value) == "unknown Fast.io signature form 'md5'; use one of hex, sha256, timestamped"


# -- the provider table, building verifiers from settings, signing -----------------------------


def test_the_url_names_of_the_providers() -> None:
    assert list(PROVIDER_CLASSES) == ["fastio", "github", "stripe", "standard"]  # /webhooks/<name>


def test_verifiers_are_built_for_providers_with_a_secret_and_carry_the_settings() -> None:
    settings = Settings(
        secrets=ProviderSecrets(fastio=("f",), standard=(PROVIDERS["standard"][1],)),
        fastio_signature_format="hex",
        timestamp_tolerance_s=42,
        partition_key_field="repo.id",
    )
    built = build_providers(settings)
    assert {name: type(provider) for name, provider in built.items()} == {
        "fastio": FastioProvider,
        "standard": StandardProvider,
    }
    assert all((p.tolerance_s, p.key_field) == (42, "repo.id") for p in built.values())
    fastio = built["fastio"]
    assert isinstance(fastio, FastioProvider) and fastio.signature_format == "hex"
    assert fastio.verify(BODY, sign("fastio", BODY, "f", form="hex"), NOW) == "hex"


def test_no_secret_at_all_fails_closed() -> None:
    with pytest.raises(ConfigError) as refused:
        build_providers(Settings())
    assert str(refused.value) == (
        "no webhook secret is set, so every request would be refused: set FASTIO_WEBHOOK_SECRET "
        "(or GITHUB_, STRIPE_ or STANDARD_WEBHOOK_SECRET, or <NAME>_FILE)"
    )


def test_signed_requests_are_json_and_unknown_providers_are_named() -> None:
    assert sign("stripe", BODY, "s", timestamp=NOW)["Content-Type"] == "application/json"
    with pytest.raises(ValueError) as refused:
        sign("gitlab", BODY, "s")
    assert str(refused.value) == "unknown provider 'gitlab'; use one of fastio, github, stripe, standard"


def test_github_signing_sends_the_event_and_a_delivery_id_parse_reads() -> None:
    provider = GithubProvider(("s",))
    named = sign("github", BODY, "s", event="push", delivery="d-1")
    parsed = provider.parse({}, named)
    assert (parsed.event_type, parsed.event_id) == ("push", "d-1")
    assert sign("github", BODY, "s")["X-GitHub-Event"] == "ping"  # what GitHub sends when a hook is made
    fresh = {sign("github", BODY, "s")["X-GitHub-Delivery"] for _ in range(2)}
    assert len(fresh) == 2 and "" not in fresh


def test_a_github_header_that_is_not_sha256_hex_is_invalid() -> None:
    assert code_of(GithubProvider(("s",)), BODY, {"X-Hub-Signature-256": "sha1=abc"}) == "invalid_signature"


def test_a_timestamp_exactly_at_the_tolerance_is_accepted_and_one_past_it_is_stale() -> None:
    provider = StripeProvider(("whsec_stripe",), tolerance_s=300)
    assert provider.verify(BODY, sign("stripe", BODY, "whsec_stripe", timestamp=NOW - 300), NOW) == "stripe"
    assert (
        code_of(provider, BODY, sign("stripe", BODY, "whsec_stripe", timestamp=NOW - 301))
        == "stale_signature"
    )


@pytest.mark.parametrize(
    "stamp", ["soon", "²", "1700000000¹"]
)  # the last two: isdigit(), yet not ASCII (latin-1)
def test_a_timestamp_that_is_not_unix_seconds_is_invalid(stamp: str) -> None:
    assert (
        code_of(StripeProvider(("s",)), BODY, {"Stripe-Signature": f"t={stamp},v1=abc"})
        == "invalid_signature"
    )


def test_signature_characters_outside_latin1_are_refused_not_crashed() -> None:
    assert code_of(GithubProvider(("s",)), BODY, {"X-Hub-Signature-256": "sha256=€"}) == "invalid_signature"


def test_a_provider_must_both_verify_and_parse() -> None:
    class OnlyParses(Provider):
        def parse(self, document: object, headers: Headers) -> ParsedEvent:
            raise NotImplementedError

    class OnlyVerifies(Provider):
        def verify(self, body: bytes, headers: Headers, now: float) -> str:
            return "x"

    for incomplete in (OnlyParses, OnlyVerifies):
        with pytest.raises(TypeError, match="abstract"):
            incomplete(())  # type: ignore[abstract]
