"""The fault suite's own arithmetic and detectors: a ledger that could not count a loss, or a
log scan that could not see a leak, would make every scenario pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter

from tests.faults.harness import signing
from tests.faults.harness.ledger import LedgerRow, format_table, reckon
from tests.faults.harness.logscan import forbidden_strings, scan_lines
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook, standard_webhook


def test_a_2xx_missing_from_kafka_or_a_sink_is_lost_and_a_second_effect_is_a_duplicate() -> None:
    accepted = {"a", "b", "c", "d"}
    result = reckon(
        "unit",
        sent=accepted | {"e"},
        accepted=accepted,
        in_kafka=Counter({"a": 1, "b": 2, "c": 1}),  # d never reached Kafka; b twice is fine
        effects={"indexer": Counter({"a": 1, "b": 1, "c": 2}), "archiver": Counter({"a": 1, "b": 1})},
        dead_lettered={"archiver": {"c"}},  # accounted for by the DLQ: not lost
    )
    assert result.row.lost == 1 and result.lost_ids["kafka"] == ["d"]
    assert result.row.duplicated == 1 and result.duplicated_ids["indexer"] == ["c"]
    assert result.row.processed == {"indexer": 3, "archiver": 2}
    assert (result.row.sent, result.row.answered_2xx, result.row.in_kafka) == (5, 4, 3)
    assert not result.row.ok


def test_the_table_has_one_line_per_scenario_and_compares_with_the_last_run() -> None:
    row = LedgerRow("broker-loss", 10, 9, 9, {"indexer": 9, "notifier": 9, "archiver": 9}, 0, 0, 0)
    table = format_table([row], {"broker-loss": {"answered_2xx": 8, "lost": 0, "duplicated": 1}})
    header, line = table.splitlines()
    assert header.split()[:2] == ["scenario", "sent"]
    assert line.split()[:9] == ["broker-loss", "10", "9", "9", "9", "9", "9", "0", "0"]
    assert "last run: 2xx 8, lost 0, dup 1" in line


def test_the_log_scan_finds_secrets_signatures_and_payloads_however_they_are_embedded() -> None:
    keys = SigningKeys.generate()
    hooks = [fastio_webhook(keys.fastio, n) for n in range(3)] + [standard_webhook(keys.standard)]
    forbidden = forbidden_strings(keys.all(), hooks)
    body = hooks[0].request.body.decode()
    lines = [
        json.dumps({"msg": "request", "event_id": hooks[0].event_id, "status": 200}),  # fine
        json.dumps({"msg": "bad", "body": body}),  # a whole body, JSON-escaped
        f"header X-Fastio-Signature={hooks[0].request.headers['X-Fastio-Signature']}",
        json.dumps({"sig": hooks[2].request.headers["Fastio-Signature"]}),  # t=..,v1=<base64>
        f"secret is {keys.github}",
        f"std {hooks[3].request.headers['webhook-signature']}",
    ]
    leaks = scan_lines("log", lines, forbidden)
    assert [(leak.line_no, leak.kind) for leak in leaks] == [
        (2, "payload"),
        (3, "signature"),
        (4, "signature"),
        (5, "secret"),
        (6, "signature"),
    ]


def test_signatures_follow_the_providers_published_recipes() -> None:
    body, secret = b'{"x":1}', "s3cret"
    expected_hex = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert signing.fastio(body, secret, "hex").headers["X-Fastio-Signature"] == expected_hex
    assert signing.github(body, secret, "d", "e").headers["X-Hub-Signature-256"] == f"sha256={expected_hex}"
    stamped = signing.fastio(body, secret, "timestamped", now=1700000000).headers["Fastio-Signature"]
    mac = base64.b64encode(hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).digest()).decode()
    assert stamped == f"t=1700000000,v1={mac}"
    # The Standard Webhooks spec's own example secret, id and timestamp.
    std = signing.standard(
        b'{"test": 2432232314}', "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
        now=1614265330,
    )  # fmt: skip
    assert std.headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
