"""Scenario 6: no secret, signature or payload body in any log line the suite captured.

Runs last (see conftest) so it scans every log of the session: the producer's and each group
member's output in every scenario, the in-process producer's log, and the CLI's output. First
it sends what most tempts a logger: every provider's valid webhooks, their near misses (another
secret, a tampered body, a stale timestamp), malformed bodies of every refusal, a destination
that refuses, an event the indexer refuses, and poison carrying a payload into the DLQ; then it
runs the DLQ commands an operator would (`dlq list`, `dlq show` without --payload).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer

from hookstream_dev.kafka import LocalCluster
from hookstream_dev.tls import CertificateAuthority
from schemas.codec import Envelope, encode, utc_now
from tests.faults.conftest import PipelineFactory
from tests.faults.harness import signing
from tests.faults.harness.accounting import dead_lettered, wait_caught_up
from tests.faults.harness.kafka_reader import kafka_headers, read_all
from tests.faults.harness.load import post, wait_for_status
from tests.faults.harness.logscan import LogEvidence, forbidden_strings, scan_lines, secret_file_strings
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.signing import SignedRequest
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import SigningKeys, Webhook, fastio_webhook, one_of_each

pytestmark = [pytest.mark.faults, pytest.mark.faults_smoke, pytest.mark.timeout(300)]


def tempting_requests(keys: SigningKeys) -> list[Webhook]:
    stranger = SigningKeys.generate()
    hooks = [*one_of_each(keys), *one_of_each(keys), *one_of_each(stranger)]
    base = fastio_webhook(keys.fastio)
    body = base.request.body
    stale = signing.fastio(body, keys.fastio, "timestamped", now=int(time.time()) - 3600)
    tampered = replace(base.request, body=body.replace(b"report", b"r3port"))
    broken_json = body[:-5]
    missing = json.dumps({"note": base.canary, "event": "file.created"}).encode()
    hooks += [
        Webhook(base.event_id + "-stale", "fastio", base.canary, stale),
        Webhook(base.event_id + "-tampered", "fastio", base.canary, tampered),
        Webhook(base.event_id + "-400", "fastio", base.canary, signing.fastio(broken_json, keys.fastio)),
        Webhook(base.event_id + "-422", "fastio", base.canary, signing.fastio(missing, keys.fastio)),
        Webhook(
            base.event_id + "-415",
            "fastio",
            base.canary,
            SignedRequest(base.request.path, body, {**base.request.headers, "Content-Type": "text/plain"}),
        ),
    ]
    no_object = fastio_webhook(keys.fastio)  # the indexer cannot index a file without an id
    doc = json.loads(no_object.request.body)
    del doc["object_id"], doc["resource"]["id"]
    unindexable = json.dumps(doc).encode()
    hooks.append(replace(no_object, request=signing.fastio(unindexable, keys.fastio)))
    hooks.append(fastio_webhook(keys.fastio, name="refuse-me"))  # the destination answers 400
    return hooks


def poison_with_payload(bootstrap: str, topic: str, keys: SigningKeys) -> list[Webhook]:
    """Truncated and unknown-version envelopes whose bytes hold a payload and its canary."""
    hooks = [fastio_webhook(keys.fastio) for _ in range(4)]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for n, hook in enumerate(hooks):
        envelope = Envelope(
            event_id=hook.event_id,
            provider="fastio",
            event_type="workspace_storage_file_added",
            workspace_id="ws-0",
            payload=hook.request.body,
            received_at=utc_now(),
        )
        whole = encode(envelope)
        value = whole[: len(whole) - 7] if n % 2 else b"H" + bytes([77]) + whole[2:]
        producer.produce(topic, value, b"ws-0", headers=kafka_headers(envelope.headers()))
    assert producer.flush(30) == 0
    return hooks


def test_no_secret_signature_or_payload_in_any_log_line(
    healthy_cluster: LocalCluster,
    make_pipeline: PipelineFactory,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    evidence: LogEvidence,
) -> None:
    receiver.status_for = lambda body: 400 if b"refuse-me" in body else 200
    pipeline = make_pipeline()
    producer = pipeline.producer(workers=2)
    pipeline.start_groups(GROUPS)
    wait_for_status(producer.base_url + "/readyz")

    hooks = tempting_requests(keys)
    with requests.Session() as session:
        answers = {hook.event_id: post(session, producer.base_url, hook, 15).status for hook in hooks}
    poison = poison_with_payload(healthy_cluster.bootstrap_servers, pipeline.topic, keys)
    evidence.sent([*hooks, *poison], keys.all())

    lag = wait_caught_up(pipeline, GROUPS, timeout_s=90)
    assert not any(lag.values()), f"the groups did not catch up: {lag}"
    dlq = read_all(pipeline.bootstrap, pipeline.dlq_topic)
    listing = pipeline.cli("dlq", "list")
    for record in dlq[:4]:
        pipeline.cli("dlq", "show", f"{record.partition}:{record.offset}")

    # The traffic did what it was meant to, so the scan below covers every refusal path.
    assert {s for s in answers.values()} >= {200, 400, 401, 415, 422}, answers
    assert set(dead_lettered(dlq)) == set(GROUPS), "not every group wrote a dead letter to be logged"
    assert listing.returncode == 0, listing.stderr

    files, leaks = evidence.scan()
    lines = sum(len(f.read_text(errors="replace").splitlines()) for f in files if f.exists())
    print(f"\nscanned {lines} lines in {len(files)} files for {len(evidence.webhooks)} payloads")
    assert files and lines > 0, "no log was captured: the scan proved nothing"
    assert not leaks, f"{len(leaks)} leaks, e.g.\n" + "\n".join(map(str, leaks[:8]))


def test_the_scan_knows_kafka_passwords_and_private_keys(tmp_path: Path) -> None:
    """The security suite (tests/integration/security/) scans its logs for every SCRAM password
    and private key the secured broker holds; a leaked line of either is found."""
    identity = CertificateAuthority(tmp_path / "ca").issue("producer")
    password = tmp_path / "producer.password"
    password.write_text("scram-password-for-the-scan\n")
    forbidden = forbidden_strings(secret_file_strings([identity.key, password]), [])
    key_line = identity.key.read_text().splitlines()[1]
    lines = [f"ssl.key.pem={key_line}", "sasl.password=scram-password-for-the-scan", "all is well"]
    assert [leak.line_no for leak in scan_lines("log", lines, forbidden)] == [1, 2]
