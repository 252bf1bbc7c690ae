"""Property tests over hostile input: what is signed verifies, anything else is refused
with a SignatureError (never another exception), and parsing refuses only with PayloadError."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from producer.errors import PayloadError, SignatureError
from producer.providers import sign
from producer.providers.fastio import FastioProvider
from producer.providers.github import GithubProvider
from producer.providers.standard import StandardProvider
from producer.providers.stripe import StripeProvider

NOW = 1_700_000_000
STANDARD_SECRET = "whsec_" + base64.b64encode(b"s" * 24).decode()
VERIFIERS = {
    "fastio": FastioProvider(("s3cret",)),
    "github": GithubProvider(("s3cret",)),
    "stripe": StripeProvider(("s3cret",)),
    "standard": StandardProvider((STANDARD_SECRET,)),
}
SECRETS = {"fastio": "s3cret", "github": "s3cret", "stripe": "s3cret", "standard": STANDARD_SECRET}
HEADER_NAMES = [
    "Fastio-Signature",
    "X-Fastio-Signature",
    "X-Hub-Signature-256",
    "Stripe-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _options(provider: str) -> dict[str, object]:
    return {} if provider == "github" else {"timestamp": NOW}


def _signable(provider: str, body: bytes) -> bytes:
    """Standard Webhooks signs text: its senders can only send UTF-8 bodies."""
    return body.decode(errors="replace").encode() if provider == "standard" else body


@given(provider=st.sampled_from(list(VERIFIERS)), body=st.binary(max_size=2048))
def test_whatever_is_signed_verifies(provider: str, body: bytes) -> None:
    body = _signable(provider, body)
    headers = sign(provider, body, SECRETS[provider], **_options(provider))
    assert VERIFIERS[provider].verify(body, headers, NOW)


@given(
    provider=st.sampled_from(list(VERIFIERS)),
    body=st.binary(min_size=1, max_size=512),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_altered_byte_is_refused(provider: str, body: bytes, position: int, flip: int) -> None:
    body = _signable(provider, body)
    headers = sign(provider, body, SECRETS[provider], **_options(provider))
    index = position % len(body)
    altered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    try:
        VERIFIERS[provider].verify(altered, headers, NOW)
    except SignatureError as exc:
        assert exc.code == "invalid_signature"
    else:
        raise AssertionError("an altered body verified")


@given(
    provider=st.sampled_from(list(VERIFIERS)),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), st.text(max_size=200), max_size=7),
    body=st.binary(max_size=256),
)
def test_garbage_headers_are_refused_with_a_signature_error(
    provider: str, headers: dict[str, str], body: bytes
) -> None:
    try:
        VERIFIERS[provider].verify(body, headers, NOW)
    except SignatureError as exc:
        assert exc.code in {"missing_signature", "invalid_signature", "stale_signature"}
    else:
        raise AssertionError("garbage verified")


@given(provider=st.sampled_from(list(VERIFIERS)), document=json_values, header_value=st.text(max_size=20))
def test_parsing_any_json_returns_an_event_or_names_fields(
    provider: str, document: object, header_value: str
) -> None:
    json.dumps(document)  # only what a JSON body can decode to
    headers = {"X-GitHub-Delivery": header_value, "X-GitHub-Event": header_value, "webhook-id": header_value}
    try:
        event = VERIFIERS[provider].parse(document, headers)
    except PayloadError as exc:
        assert exc.fields
    else:
        assert event.event_id and event.event_type and event.partition_key
