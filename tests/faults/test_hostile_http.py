"""Scenario 5, hostile HTTP: hypothesis fuzzes headers and bodies for every provider against
the producer under gunicorn (its real HTTP stack) publishing to the three-node cluster.

Properties: never a 500; never a 2xx without a valid signature (garbage, and near-misses of a
valid one: tampered body, truncated or altered MAC, moved timestamp or id); every refusal is
JSON `{"error", "detail"}`; a correctly signed body of any shape gets 2xx only with an event_id.
Slow clients and malformed framing: `test_hostile_sockets.py`; duplicate deliveries:
`test_duplicate_deliveries.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hookstream_dev.kafka import LocalCluster
from tests.faults.conftest import new_topics
from tests.faults.harness import rawhttp, signing
from tests.faults.harness.load import wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.signing import SignedRequest
from tests.faults.harness.webhooks import (
    SigningKeys,
    Webhook,
    fastio_webhook,
    github_webhook,
    standard_webhook,
    stripe_webhook,
)

pytestmark = [pytest.mark.faults, pytest.mark.faults_smoke]

MAX_BODY = 16 * 1024
PROVIDERS = ("fastio", "github", "stripe", "standard")
REFUSALS = {400, 401, 404, 405, 413, 415, 422}
FUZZ = hsettings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Server:
    """The running producer, and one keep-alive session to it."""

    def __init__(self, base_url: str, keys: SigningKeys) -> None:
        self.base_url = base_url
        self.keys = keys
        self.session = requests.Session()

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        try:
            return self.session.request(method, self.base_url + path, data=body, headers=headers, timeout=15)
        except requests.exceptions.InvalidHeader:
            hypothesis.reject()  # a header no HTTP client can send: not an input worth a verdict


@pytest.fixture(scope="module")
def server(cluster: LocalCluster, work_dir: Any, evidence: LogEvidence) -> Iterator[Server]:
    """One producer (2 workers) for the module, its logs kept for scenario 6."""
    cluster.start()
    keys = SigningKeys.generate()
    events, dlq = new_topics(cluster)
    pipeline = Pipeline(
        work_dir / "hostile-http", cluster.bootstrap_servers, events, dlq, keys,
        extra_env={"HOOKSTREAM_MAX_BODY_BYTES": str(MAX_BODY)},
    )  # fmt: skip
    evidence.watch_dir(pipeline.log_dir)
    evidence.sent([], keys.all())
    producer = pipeline.producer(workers=2)
    try:
        wait_for_status(producer.base_url + "/readyz")
        yield Server(producer.base_url, keys)
    finally:
        pipeline.stop()


@pytest.fixture
def keys(server: Server) -> SigningKeys:
    return server.keys


def send(server: Server, request: SignedRequest) -> requests.Response:
    return server.request("POST", request.path, request.body, request.headers)


def assert_refusal(resp: requests.Response, allowed: set[int] = REFUSALS) -> None:
    assert resp.status_code != 500, resp.text
    assert resp.status_code in allowed, (resp.status_code, resp.text)
    doc = resp.json()
    assert set(doc) >= {"error", "detail"}, doc


# -- strategies ---------------------------------------------------------------------------------

LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
SIGNATURE_HEADERS = (
    "X-Fastio-Signature",
    "Fastio-Signature",
    "X-Hub-Signature-256",
    "X-GitHub-Delivery",
    "X-GitHub-Event",
    "Stripe-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
TRICKY_VALUES = (
    "",
    " ",
    "sha256=",
    "sha256=" + "0" * 64,
    "t=,v1=",
    "t=abc,v1=x",
    "t=99999999999999999999999999,v1=AAAA",
    "t=-1,v1=",
    "t=1e9,v1=" + "A" * 44,
    "t=1,t=2,v1=a,v1=b",
    "v1,",
    "v1,====",
    "v1=" + "0" * 64,
    "v2,abc",
    "999999999999999999999999",
    "-5",
    "nan",
    "ÿ" * 40,
)
header_values = st.one_of(st.sampled_from(TRICKY_VALUES), st.text(LATIN1, max_size=120))
content_types = st.sampled_from(
    (
        "application/json",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
        "text/plain",
        "",
        "*/*",
    )
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"{" * 5000),  # deep nesting
    st.just(b"\xef\xbb\xbf{}"),  # BOM
)


def payload_for(provider: str) -> st.SearchStrategy[dict[str, Any]]:
    """Documents shaped like the provider's: the fields it reads are usually plausible strings
    (so some are accepted) and otherwise missing, empty, huge, or of another JSON type; the
    parser must answer 2xx, 400 or 422, never trip over them."""
    plausible = st.text(min_size=1, max_size=40)
    odd = st.one_of(json_values, st.just(""), st.just("x" * 5000), st.just("\u0000"), st.just("\ud800"))
    missing = object()
    field = st.one_of(plausible, plausible, plausible, odd, st.just(missing))
    fields = {
        "fastio": ("event_id", "event", "event_type", "workspace_id", "object_id", "created", "resource"),
        "github": ("workspace_id", "action"),
        "stripe": ("id", "type", "created", "workspace_id"),
        "standard": ("type", "workspace_id", "timestamp"),
    }[provider]
    documents = st.fixed_dictionaries(dict.fromkeys(fields, field))
    extras = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
    return st.tuples(documents, extras).map(
        lambda parts: {**parts[1], **{k: v for k, v in parts[0].items() if v is not missing}}
    )


# -- properties ---------------------------------------------------------------------------------


@FUZZ
@given(
    provider=st.sampled_from((*PROVIDERS, "unknown", "FASTIO", "fastio/../github", "")),
    headers=st.dictionaries(
        st.one_of(
            st.sampled_from(SIGNATURE_HEADERS), st.text(st.sampled_from("abcXYZ-_"), min_size=1, max_size=12)
        ),
        header_values,
        max_size=6,
    ),
    content_type=content_types,
    body=bodies,
    method=st.sampled_from(("POST", "POST", "POST", "PUT", "GET")),
)
def test_unsigned_or_garbled_requests_are_refused_cleanly(
    server: Server, provider: str, headers: dict[str, str], content_type: str, body: bytes, method: str
) -> None:
    resp = server.request(method, f"/webhooks/{provider}", body, {**headers, "Content-Type": content_type})
    hypothesis.event(f"status {resp.status_code}")
    assert_refusal(resp)


@FUZZ
@given(data=st.data(), provider=st.sampled_from(PROVIDERS))
def test_a_correctly_signed_body_of_any_shape_never_breaks_the_producer(
    server: Server, keys: SigningKeys, provider: str, data: st.DataObject
) -> None:
    doc = data.draw(payload_for(provider))
    body = json.dumps(doc).encode()
    if provider == "fastio":
        request = signing.fastio(body, keys.fastio, data.draw(st.sampled_from(signing.FASTIO_FORMS)))
    elif provider == "github":
        delivery, event = data.draw(st.text(LATIN1, max_size=60)), data.draw(st.text(LATIN1, max_size=30))
        request = signing.github(body, keys.github, delivery, event)
    elif provider == "stripe":
        request = signing.stripe(body, keys.stripe)
    else:
        request = signing.standard(body, keys.standard, data.draw(st.text(LATIN1, min_size=1, max_size=60)))
    resp = send(server, request)
    hypothesis.event(f"{provider}: {resp.status_code}")
    if resp.status_code == 200:
        assert resp.json()["event_id"], resp.text
    else:
        # 503 is an honest answer when the cluster is slow to acknowledge; a 500 never is.
        assert_refusal(resp, {400, 401, 413, 422, 503})


def valid(keys: SigningKeys, provider: str) -> Webhook:
    return {
        "fastio": lambda: fastio_webhook(keys.fastio, n=hash(provider)),
        "fastio-hex": lambda: fastio_webhook(keys.fastio, form="hex"),
        "fastio-sha256": lambda: fastio_webhook(keys.fastio, form="sha256"),
        "fastio-timestamped": lambda: fastio_webhook(keys.fastio, form="timestamped"),
        "github": lambda: github_webhook(keys.github),
        "stripe": lambda: stripe_webhook(keys.stripe),
        "standard": lambda: standard_webhook(keys.standard),
    }[provider]()


NEAR_MISS_PROVIDERS = ("fastio-hex", "fastio-sha256", "fastio-timestamped", "github", "stripe", "standard")


def tamper(hook: Webhook, how: str, where: int) -> SignedRequest:
    """A near-miss of a valid request: the same bytes and MAC with one thing changed."""
    req = hook.request
    mac = req.macs[0]
    sig_header = next(
        h
        for h in req.headers
        if h.lower() in {s.lower() for s in SIGNATURE_HEADERS} and mac in req.headers[h]
    )
    if how == "body":
        i = where % len(req.body)
        body = req.body[:i] + bytes([req.body[i] ^ 0x01]) + req.body[i + 1 :]
        return replace(req, body=body)
    if how == "body-appended":
        return replace(req, body=req.body + b" ")
    headers = dict(req.headers)
    if how == "mac-truncated":
        headers[sig_header] = headers[sig_header].replace(mac, mac[: where % len(mac)])
    elif how == "mac-altered":
        i = where % len(mac)
        swapped = "1" if mac[i] != "1" else "2"
        headers[sig_header] = headers[sig_header].replace(mac, mac[:i] + swapped + mac[i + 1 :])
    elif how == "mac-removed":
        del headers[sig_header]
    elif how == "timestamp-moved":
        if "webhook-timestamp" in headers:
            headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1 - where % 100)
        elif "t=" in headers[sig_header]:
            ts = int(headers[sig_header].split("t=")[1].split(",")[0])
            headers[sig_header] = headers[sig_header].replace(f"t={ts}", f"t={ts - 1 - where % 100}")
        else:
            headers[sig_header] = headers[sig_header] + "x"
    elif how == "id-changed":
        if "webhook-id" in headers:
            headers["webhook-id"] = headers["webhook-id"] + "x"
        else:
            headers[sig_header] = "v1=" + mac  # the MAC alone, in a form that is not the provider's
    return replace(req, headers=headers)


@FUZZ
@given(
    provider=st.sampled_from(NEAR_MISS_PROVIDERS),
    how=st.sampled_from(
        (
            "body",
            "body-appended",
            "mac-truncated",
            "mac-altered",
            "mac-removed",
            "timestamp-moved",
            "id-changed",
        )
    ),
    where=st.integers(min_value=0, max_value=10_000),
)
def test_a_near_miss_of_a_valid_signature_is_401(
    server: Server, keys: SigningKeys, evidence: LogEvidence, provider: str, how: str, where: int
) -> None:
    hook = valid(keys, provider)
    evidence.sent([hook])
    resp = send(server, tamper(hook, how, where))
    assert_refusal(resp, {401})


@pytest.mark.parametrize("provider", NEAR_MISS_PROVIDERS)
def test_the_untampered_originals_are_accepted(
    server: Server, keys: SigningKeys, evidence: LogEvidence, provider: str
) -> None:
    # Without this the near-miss property would pass against a producer that refuses everything.
    hook = valid(keys, provider)
    evidence.sent([hook])
    resp = send(server, hook.request)
    assert resp.status_code == 200, resp.text
    assert resp.json()["event_id"] == hook.event_id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signature_made_with_another_secret_is_401(
    server: Server, evidence: LogEvidence, provider: str
) -> None:
    stranger = SigningKeys.generate()
    hook = valid(stranger, provider)
    evidence.sent([hook], stranger.all())
    assert_refusal(send(server, hook.request), {401})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_oversize_bodies_are_413_whether_announced_or_not(
    server: Server, keys: SigningKeys, provider: str, evidence: LogEvidence
) -> None:
    hook = valid(keys, provider)
    big = hook.request.body[:-1] + b', "pad": "' + b"x" * (MAX_BODY + 10) + b'"}'
    # Announced by Content-Length: refused before reading (signature not even checked).
    assert_refusal(server.request("POST", hook.request.path, big, hook.request.headers), {413})
    # Not announced (chunked): refused while reading, whatever the size of the chunks.
    chunks = [big[i : i + 4096] for i in range(0, len(big), 4096)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    headers = {**hook.request.headers, "Transfer-Encoding": "chunked"}
    head = rawhttp.request_head(hook.request.path, headers)
    assert rawhttp.exchange(server.base_url, head + chunked) == 413
