"""The load generator's pre-signed requests are what the Hookstream producer accepts."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench import payloads
from bench.apps.signature import valid
from producer.providers.fastio import FastioProvider, sign


class _Headers(dict[str, str]):
    def get(self, key: str, default: None = None) -> str | None:  # type: ignore[override]
        return super().get(key, default)


def test_request_lines_carry_the_fastio_hex_signature_and_distinct_event_ids(tmp_path: Path) -> None:
    path = payloads.write_requests(tmp_path / "requests.tsv", "run1-step", 50)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 50

    provider = FastioProvider((payloads.SECRET,))
    event_ids = set()
    for line in lines:
        signature, body = line.split(b"\t", 1)
        assert signature.decode() == sign(body, payloads.SECRET, form="hex")["X-Fastio-Signature"]
        assert (
            provider.verify(body, _Headers({"X-Fastio-Signature": signature.decode()}), time.time()) == "hex"
        )
        assert valid(body, signature.decode(), payloads.SECRET.encode())  # the comparison apps agree
        parsed = provider.parse(json.loads(body), _Headers())
        event_ids.add(parsed.event_id)
    assert len(event_ids) == 50


def test_a_step_gets_more_distinct_requests_than_it_can_send() -> None:
    assert payloads.requests_needed(1000, 10, open_max_rps=12000) > 1000 * 10
    assert payloads.requests_needed(0, 10, open_max_rps=12000) > 12000 * 10
