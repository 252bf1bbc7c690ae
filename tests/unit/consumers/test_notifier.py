"""Notifier rules, message formats, HTTP outcome classes and the sent records in the state store
(every test of the records runs against both backends: the host's SQLite file and a real Redis)."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from consumers.errors import PermanentError, TransientError, UnavailableError
from consumers.handler import Record
from consumers.notifier import (
    Destination,
    Notifier,
    destinations_for,
    load_rules,
    message_body,
    parse_rules,
    post,
)
from hookstream.errors import ConfigError, StateStoreUnavailable
from hookstream.settings import Settings
from schemas.codec import Envelope


def _envelope(
    event_type: str = "workspace_storage_file_added", workspace: str = "ws-1", n: int = 1
) -> Envelope:
    return Envelope(
        event_id=f"evt-{n}",
        provider="fastio",
        event_type=event_type,
        workspace_id=workspace,
        payload=json.dumps({"object_id": "o1", "resource": {"name": "plan.pdf"}}).encode(),
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        object_id="o1",
    )


RULES = {
    "rules": [
        {"events": ["workspace_storage_file_*", "file.*"], "slack": "https://hooks.slack.com/services/T/B/X"},
        {"events": "*_deleted", "workspaces": ["ws-9"], "url": "http://ops.example/hook"},
        {"events": ["FILE.*"], "slack": "https://hooks.slack.com/services/T/B/X"},
    ]
}


def test_rules_match_patterns_case_insensitively_and_scope_workspaces() -> None:
    rules = parse_rules(RULES)
    slack = Destination("slack", "https://hooks.slack.com/services/T/B/X")
    ops = Destination("http", "http://ops.example/hook")
    assert destinations_for(rules, _envelope("file.Created")) == [slack]  # listed twice, sent once
    assert destinations_for(rules, _envelope("workspace_storage_file_deleted", "ws-9")) == [slack, ops]
    assert destinations_for(rules, _envelope("workspace_storage_file_deleted", "ws-1")) == [slack]
    assert destinations_for(rules, _envelope("workspace_membership_added")) == []


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({}, "top-level `rules:`"),
        ({"rules": ["x"]}, "rule 1 must be a mapping"),
        ({"rules": [{"events": "*"}]}, "exactly one of `slack` or `url`"),
        ({"rules": [{"events": "*", "url": "http://a", "slack": "http://b"}]}, "exactly one"),
        ({"rules": [{"events": [], "url": "http://a"}]}, "`events` must be"),
        ({"rules": [{"events": "*", "url": "ftp://a"}]}, "not an http"),
        ({"rules": [{"events": "*", "url": "http://a", "channel": "#x"}]}, "unknown keys"),
    ],
)
def test_bad_rules_say_what_is_wrong(document: object, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint.replace("`", ".").replace("(", r"\(")):
        parse_rules(document)


def test_rules_file_then_notify_url_then_log_only(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - events: ['*']\n    url: http://127.0.0.1:9/x\n")
    both = Settings(notifier_rules=rules_file, notify_url="https://hooks.slack.com/services/A")
    assert [r.destination.url for r in load_rules(both)] == ["http://127.0.0.1:9/x"]
    slack_only = load_rules(Settings(notify_url="https://hooks.slack.com/services/A"))
    assert slack_only[0].destination.kind == "slack" and slack_only[0].patterns == ("*",)
    assert load_rules(Settings()) == []
    with pytest.raises(ConfigError, match="cannot be read"):
        load_rules(Settings(notifier_rules=tmp_path / "missing.yaml"))
    rules_file.write_text("rules: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(Settings(notifier_rules=rules_file))


def test_slack_gets_a_text_message_and_http_gets_the_event_as_json() -> None:
    envelope = _envelope()
    slack = message_body(Destination("slack", "https://hooks.slack.com/x"), envelope)
    assert set(slack) == {"text"} and "plan.pdf" in slack["text"] and "ws-1" in slack["text"]
    body = message_body(Destination("http", "http://x"), envelope)
    assert body["event_id"] == "evt-1" and body["name"] == "plan.pdf"
    assert body["payload"] == {"object_id": "o1", "resource": {"name": "plan.pdf"}}
    json.dumps(body)


class Receiver:
    """A loopback HTTP endpoint answering with a status the test chooses."""

    def __init__(self) -> None:
        self.status = 200
        self.held: set[str] = set()  # event_ids answered only once `gate` opens
        self.gate = threading.Event()
        self.keys: list[str] = []
        self.gets = 0
        receiver = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                if key in receiver.held:
                    receiver.gate.wait(30)
                receiver.keys.append(key)
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", receiver.url)
                self.end_headers()

            def do_GET(self) -> None:  # where a followed redirect would land, body dropped
                receiver.gets += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def notify(state_settings: Settings, receiver: Receiver) -> Settings:
    """Every event to the receiver; sent records in the state store of each backend."""
    return replace(state_settings, notify_url=receiver.url)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (204, None),
        (500, TransientError),
        (503, TransientError),
        (429, TransientError),
        (404, PermanentError),
        (400, PermanentError),
        (301, PermanentError),  # followed, the POST would become a GET without its body
        (302, PermanentError),
        (307, PermanentError),
    ],
)
def test_status_codes_map_to_outcomes(receiver: Receiver, status: int, error: type | None) -> None:
    receiver.status = status
    destination = Destination("http", receiver.url)
    with requests.Session() as session:
        if error is None:
            post(session, destination, _envelope())
        else:
            with pytest.raises(error, match=str(status)):
                post(session, destination, _envelope())
    assert receiver.keys == ["evt-1"] and receiver.gets == 0


@pytest.mark.parametrize(
    ("url", "error", "host"),
    [
        ("http://user:hunter2@127.0.0.1:9/services/s3cr3t", TransientError, "127.0.0.1:9"),  # refused
        ("http:///services/s3cr3t", PermanentError, "None"),  # requests: "Invalid URL '<the url>'"
    ],
)
def test_errors_name_the_host_never_the_url_which_may_hold_a_secret(url: str, error: type, host: str) -> None:
    with requests.Session() as session, pytest.raises(error) as raised:
        post(session, Destination("http", url), _envelope())
    message = str(raised.value)
    assert f"destination {host}" in message
    assert "hunter2" not in message and "s3cr3t" not in message


def test_an_unreachable_destination_is_transient() -> None:
    with requests.Session() as session, pytest.raises(TransientError, match="unreachable"):
        post(session, Destination("http", "http://127.0.0.1:9/nothing-listens"), _envelope())


def test_a_redelivered_event_never_notifies_twice_even_after_a_restart(
    receiver: Receiver, notify: Settings
) -> None:
    settings = notify
    records = [Record(_envelope(n=n), "t", 0, n, 0) for n in range(3)]
    notifier = Notifier(settings)
    for record in records[:2]:
        notifier.handle(record)
    notifier.close()
    restarted = Notifier(settings)
    for record in records:  # the first two again, as after a crash before the commit
        restarted.handle(record)
    restarted.close()
    assert receiver.keys == ["evt-0", "evt-1", "evt-2"]


def test_a_failed_send_is_not_recorded_so_the_retry_sends_it(receiver: Receiver, notify: Settings) -> None:
    notifier = Notifier(notify)
    receiver.status = 502
    with pytest.raises(TransientError):
        notifier.handle(Record(_envelope(), "t", 0, 0, 0))
    receiver.status = 200
    notifier.handle(Record(_envelope(), "t", 0, 0, 0))
    notifier.close()
    assert receiver.keys == ["evt-1", "evt-1"]


def _batch(notifier: Notifier, records: list[Record]) -> None:
    """One batch as the runtime drives it, then the member's stop."""
    notifier.start_batch(records)
    for record in records:
        notifier.handle(record)
    notifier.flush()
    notifier.close()


def test_a_batch_is_sent_side_by_side_keeping_each_workspaces_order(
    receiver: Receiver, notify: Settings
) -> None:
    records = [Record(_envelope(workspace=f"ws-{n % 3}", n=n), "t", 0, n, 0) for n in range(30)]
    _batch(Notifier(notify), records)
    assert sorted(receiver.keys) == sorted(f"evt-{n}" for n in range(30))  # each once
    for workspace in range(3):
        sent = [key for key in receiver.keys if int(key.removeprefix("evt-")) % 3 == workspace]
        assert sent == [f"evt-{n}" for n in range(workspace, 30, 3)]


def test_a_failure_in_a_batch_holds_back_the_rest_of_its_workspace(
    receiver: Receiver, notify: Settings
) -> None:
    records = [Record(_envelope(n=n), "t", 0, n, 0) for n in range(4)]  # one workspace
    notifier = Notifier(notify)
    receiver.status = 503
    notifier.start_batch(records)
    with pytest.raises(TransientError):
        notifier.handle(records[0])  # the error the early send met, as the runtime sees it
    assert receiver.keys == ["evt-0"]  # nothing after it was sent
    receiver.status = 200
    for record in records:  # the runtime's retry of the first, then the rest in order
        notifier.handle(record)
    notifier.flush()
    notifier.close()
    assert receiver.keys == ["evt-0", "evt-0", "evt-1", "evt-2", "evt-3"]


def test_sends_started_for_records_never_handled_settle_at_flush(
    receiver: Receiver, notify: Settings
) -> None:
    records = [Record(_envelope(workspace=f"ws-{n}", n=n), "t", 0, n, 0) for n in range(6)]
    notifier = Notifier(notify)
    notifier.start_batch(records)
    notifier.flush()  # e.g. the partition was revoked: none was handled
    sent_early = list(receiver.keys)
    time.sleep(0.3)
    assert receiver.keys == sent_early  # no send outlived the flush
    notifier.close()
    again = Notifier(notify)  # the new owner processes them all
    for record in records:
        again.handle(record)
    again.close()
    # The new owner sent exactly the ones the early sends had not (each was recorded), in order.
    assert receiver.keys[len(sent_early) :] == [f"evt-{n}" for n in range(6) if f"evt-{n}" not in sent_early]


def test_a_record_waits_for_no_other_workspace_when_every_sender_is_busy(
    receiver: Receiver, notify: Settings
) -> None:
    # Eight workspaces of three records each fill the senders: the destination holds each one's
    # second record until the gate opens. A ninth workspace's record comes right after their
    # first ones; `handle` sends it itself, without waiting for a sender to come free.
    busy = [
        [Record(_envelope(workspace=f"ws-{w}", n=10 * w + i), "t", 0, 0, 0) for i in range(3)]
        for w in range(8)
    ]
    late = Record(_envelope(workspace="ws-late", n=999), "t", 0, 0, 0)
    ordered = [chain[0] for chain in busy] + [late] + [r for chain in busy for r in chain[1:]]
    records = [replace(r, offset=offset) for offset, r in enumerate(ordered)]
    receiver.held = {chain[1].envelope.event_id for chain in busy}
    opener = threading.Timer(10, receiver.gate.set)  # else a handle that waits would wait 30 s
    opener.start()
    notifier = Notifier(notify)
    notifier.start_batch(records)
    for record in records[:9]:  # the busy workspaces' first records, then the late one
        notifier.handle(record)
    assert not receiver.gate.is_set()  # handled while every sender was held
    assert "evt-999" in receiver.keys
    receiver.gate.set()
    opener.cancel()
    for record in records[9:]:
        notifier.handle(record)
    notifier.flush()
    notifier.close()
    assert sorted(receiver.keys) == sorted(r.envelope.event_id for r in records)  # each once


def test_a_send_the_store_did_not_record_is_recorded_on_retry_not_sent_again(
    receiver: Receiver, notify: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = Notifier(notify)
    assert notifier._sent is not None
    store = notifier._sent._store
    real_put = store.put

    def put_fails_once(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(store, "put", real_put)
        raise StateStoreUnavailable("the store went away after the destination accepted")

    monkeypatch.setattr(store, "put", put_fails_once)
    record = Record(_envelope(), "t", 0, 0, 0)
    with pytest.raises(UnavailableError):
        notifier.handle(record)
    notifier.handle(record)  # the runtime's retry
    notifier.close()
    assert receiver.keys == ["evt-1"]  # sent once
    again = Notifier(notify)
    again.handle(record)  # redelivered later: the record was made on the retry
    again.close()
    assert receiver.keys == ["evt-1"]


def test_members_sharing_the_store_notify_once(receiver: Receiver, notify: Settings) -> None:
    """Two members (the SQLite file of one host, or one Redis for members on any host)."""
    records = [Record(_envelope(n=n), "t", 0, n, 0) for n in range(4)]
    first, second = Notifier(notify), Notifier(notify)
    for record in records[:3]:
        first.handle(record)
    for record in records:  # the partition moved to the second member before the commit
        second.handle(record)
    first.close()
    second.close()
    assert receiver.keys == ["evt-0", "evt-1", "evt-2", "evt-3"]


def test_sent_records_are_the_groups_own(receiver: Receiver, notify: Settings) -> None:
    record = Record(_envelope(), "t", 0, 0, 0)
    for prefix in ("blue-", "green-"):  # two deployments sharing one store and one topic name
        notifier = Notifier(replace(notify, consumer_group_prefix=prefix))
        notifier.handle(record)
        notifier.close()
    assert receiver.keys == ["evt-1", "evt-1"]


def test_an_unreachable_store_is_transient_and_notifies_nothing(
    receiver: Receiver, notify: Settings, tmp_path: Path
) -> None:
    if notify.redis_url:
        broken = replace(notify, redis_url="redis://127.0.0.1:9/0")  # nothing listens on port 9
    else:
        (tmp_path / "file").write_text("")
        broken = replace(notify, data_dir=tmp_path / "file" / "data")  # cannot be created
    notifier = Notifier(broken)
    with pytest.raises(UnavailableError, match="sent records"):  # waited out by the runtime
        notifier.handle(Record(_envelope(), "t", 0, 0, 0))
    notifier.close()
    assert receiver.keys == []  # never notified without a record
