"""What each provider's payload contributes to the envelope, and 422s naming each missing field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookstream.settings import Settings
from producer.errors import PayloadError
from producer.providers.base import timestamp_value
from producer.providers.fastio import FastioProvider
from producer.providers.github import GithubProvider
from producer.providers.standard import StandardProvider
from producer.providers.stripe import StripeProvider

FASTIO = FastioProvider(("s",))


def missing(provider, document, headers=None) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(PayloadError) as refused:
        provider.parse(document, headers or {})
    return refused.value.fields


def test_fastio_event_with_optional_fields() -> None:
    event = FASTIO.parse(
        {
            "event_id": "evt_1",
            "event": "workspace_storage_file_added",
            "workspace_id": "ws_9",
            "resource": {"id": "f_1"},
            "created": "2025-03-01T12:00:00Z",
        },
        {},
    )
    assert (event.event_id, event.event_type, event.partition_key) == (
        "evt_1",
        "workspace_storage_file_added",
        "ws_9",
    )
    assert event.object_id == "f_1"
    assert event.occurred_at == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_fastio_older_payloads_name_the_event_event_type() -> None:
    event = FASTIO.parse({"event_id": 42, "event_type": "file_deleted", "workspace_id": "w"}, {})
    assert (event.event_id, event.event_type) == ("42", "file_deleted")


def test_fastio_names_every_missing_field() -> None:
    assert missing(FASTIO, {}) == ["event_id", "event", "workspace_id"]
    assert missing(FASTIO, {"event_id": "e", "event": "", "workspace_id": None}) == ["event", "workspace_id"]
    assert missing(FASTIO, {"event_id": True, "event": "x", "workspace_id": ["w"]}) == [
        "event_id",
        "workspace_id",
    ]


@pytest.mark.parametrize("document", [[1, 2], "text", 3, None])
def test_a_payload_that_is_not_an_object_is_refused(document: object) -> None:
    assert missing(FASTIO, document) == ["(root)"]


def test_unreadable_event_times_are_kept_out_of_the_envelope_not_refused() -> None:
    for created in ("yesterday", {"at": 1}, 10**20):
        event = FASTIO.parse({"event_id": "e", "event": "x", "workspace_id": "w", "created": created}, {})
        assert event.occurred_at is None
    event = FASTIO.parse({"event_id": "e", "event": "x", "workspace_id": "w", "created": 1700000000000}, {})
    assert event.occurred_at == datetime.fromtimestamp(1700000000, UTC)


def test_github_ids_come_from_headers_and_the_key_from_a_dotted_field() -> None:
    provider = GithubProvider(("s",), key_field="repository.full_name")
    headers = {"X-GitHub-Delivery": "d-1", "X-GitHub-Event": "push"}
    event = provider.parse({"repository": {"full_name": "acme/site"}}, headers)
    assert (event.event_id, event.event_type, event.partition_key) == ("d-1", "push", "acme/site")
    assert provider.parse({}, headers).partition_key == "d-1"  # no such field: the event id
    assert missing(provider, {}, {}) == ["X-GitHub-Delivery", "X-GitHub-Event"]


def test_stripe_event() -> None:
    event = StripeProvider(("s",)).parse(
        {"id": "evt_1", "type": "invoice.paid", "created": 1700000000, "data": {"object": {"id": "in_1"}}}, {}
    )
    assert (event.event_id, event.event_type, event.partition_key, event.object_id) == (
        "evt_1",
        "invoice.paid",
        "evt_1",
        "in_1",
    )
    assert event.occurred_at == datetime.fromtimestamp(1700000000, UTC)  # Stripe's `created`
    assert missing(StripeProvider(("s",)), {"object": "event"}) == ["id", "type"]


def test_standard_event_keyed_by_the_configured_field() -> None:
    provider = StandardProvider(("whsec_AAAA",), key_field="workspace_id")
    document = {"type": "file.uploaded", "workspace_id": "ws_3", "timestamp": "2026-01-01T00:00:00Z"}
    event = provider.parse(document, {"webhook-id": "msg_1"})
    assert (event.event_id, event.event_type, event.partition_key) == ("msg_1", "file.uploaded", "ws_3")
    assert event.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert missing(provider, {}, {}) == ["webhook-id", "type"]


def test_a_sender_time_in_seconds_milliseconds_or_iso() -> None:
    assert timestamp_value(1_700_000_000) == datetime.fromtimestamp(1_700_000_000, UTC)
    assert timestamp_value(150_000_000_000) == datetime.fromtimestamp(150_000_000, UTC)  # milliseconds
    assert timestamp_value(100_000_000_000) == datetime.fromtimestamp(
        100_000_000_000, UTC
    )  # seconds, at the edge
    assert timestamp_value("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert timestamp_value("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)  # naive means UTC
    assert timestamp_value(True) is None and timestamp_value("soon") is None and timestamp_value("") is None


def test_what_a_provider_does_not_give_stays_empty() -> None:
    parsed = GithubProvider(("s",)).parse({}, {"X-GitHub-Delivery": "d-1", "X-GitHub-Event": "ping"})
    assert (parsed.object_id, parsed.occurred_at) == (None, None)
    defaults = GithubProvider(("s",))
    assert (defaults.tolerance_s, defaults.key_field) == (
        Settings.timestamp_tolerance_s,
        Settings.partition_key_field,
    )


def test_fastio_object_id_at_the_top_and_the_older_created_at() -> None:
    document = {
        "event_id": "e",
        "event": "x",
        "workspace_id": "w",
        "object_id": "f_1",
        "created_at": 1_700_000_000,
    }
    event = FastioProvider(("s",)).parse(document, {})
    assert (event.object_id, event.occurred_at) == ("f_1", datetime.fromtimestamp(1_700_000_000, UTC))
