"""The load generator's pre-signed requests are what the Hookstream producer accepts."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from bench import payloads
from bench.apps.signature import valid
from producer.providers.fastio import FastioProvider, sign


class _Headers(dict[str, str]):
    def get(self, key: str, default: None = None) -> str | None:  # type: ignore[override]
        return super().get(key, default)


def test_targets_carry_the_fastio_hex_signature_and_distinct_event_ids(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8000/webhooks/fastio"
    path = payloads.write_targets(tmp_path / "targets.jsonl", url, "run1-step", 50)
    targets = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(targets) == 50

    provider = FastioProvider((payloads.SECRET,))
    event_ids = set()
    for target in targets:
        assert (target["method"], target["url"]) == ("POST", url)
        body = base64.b64decode(target["body"])
        signature = target["header"]["X-Fastio-Signature"][0]
        assert target["header"]["Content-Type"] == ["application/json"]
        assert signature == sign(body, payloads.SECRET, form="hex")["X-Fastio-Signature"]
        assert provider.verify(body, _Headers({"X-Fastio-Signature": signature}), time.time()) == "hex"
        assert valid(body, signature, payloads.SECRET.encode())  # the comparison apps agree
        event_ids.add(provider.parse(json.loads(body), _Headers()).event_id)
    assert len(event_ids) == 50
    assert payloads.read_target(path) == (
        base64.b64decode(targets[0]["body"]),
        {
            "Content-Type": "application/json",
            "X-Fastio-Signature": targets[0]["header"]["X-Fastio-Signature"][0],
        },
    )


def test_a_step_gets_more_distinct_requests_than_it_can_send() -> None:
    assert payloads.requests_needed(1000, 10, open_max_rps=12000) > 1000 * 10
    assert payloads.requests_needed(0, 10, open_max_rps=12000) > 12000 * 10
