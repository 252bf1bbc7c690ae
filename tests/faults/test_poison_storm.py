"""Scenario 4, poison storm, in three acts on one pipeline.

1. Storm: while signed webhooks flow, records no group can read (random bytes, truncated Avro,
   an unknown schema version) and valid envelopes a handler rejects (a file event whose
   payload is not JSON: the indexer; a notification the destination refuses with 400: the
   notifier) are mixed in, about one in four. Each reaches the DLQ once per failing group with
   its headers and bytes intact; no group stops (the breaker must not trip); lag returns to 0.
2. Bad deploy: the destination refuses everything. The notifier's breaker trips and stops the
   member after about half a window, instead of draining the topic into the DLQ; the other
   groups go on.
3. Recovery: the destination is fixed, the notifier restarts, and `hookstream dlq replay
   --group notifier --since <act 2>` sends its act-2 dead letters back to it alone.
The ledger row covers every webhook answered 2xx across the three acts.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from hookstream_dev.kafka import LocalCluster
from schemas.codec import Envelope, encode, utc_now
from tests.faults.conftest import PipelineFactory
from tests.faults.harness.accounting import close_books, wait_caught_up
from tests.faults.harness.kafka_reader import Record, kafka_headers, read_all
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.load import LoadGenerator, wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.processes import Proc
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import WORKSPACES, SigningKeys, Webhook, fastio_payload, fastio_webhook

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]

BREAKER_WINDOW = 100
POISON_EACH = 18  # of each of the four kinds
REJECT_MARK = "refused-by-destination"
UNREADABLE = ("random-bytes", "truncated-avro", "unknown-version")
DLQ_HEADERS = (
    "dlq.original.topic",
    "dlq.original.partition",
    "dlq.original.offset",
    "dlq.original.timestamp",
    "dlq.group",
    "dlq.error.class",
    "dlq.error.message",
    "dlq.attempts",
    "dlq.failed_at",
)


def poison(kind: str, rng: random.Random, n: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A record value of `kind` and its headers (each tagged, to check they survive the DLQ)."""
    event_id = f"evt-{rng.getrandbits(128):032x}"
    envelope = Envelope(
        event_id=event_id,
        provider="fastio",
        event_type="workspace_storage_file_added",
        workspace_id=WORKSPACES[n % len(WORKSPACES)],
        payload=fastio_payload(event_id, f"canary-{rng.getrandbits(64):016x}", n),
        received_at=utc_now(),
        object_id="obj-" + event_id.removeprefix("evt-"),
    )
    tag = [("x-poison", kind.encode())]  # kept through the DLQ, as any original header must be
    if kind == "random-bytes":
        value = bytes([rng.choice([b for b in range(256) if b != 0x48])]) + os.urandom(rng.randint(0, 200))
        return value, tag
    if kind == "truncated-avro":
        whole = encode(envelope)
        return whole[: rng.randint(3, len(whole) - 1)], tag
    if kind == "unknown-version":
        return b"H" + bytes([99]) + encode(envelope)[2:], tag
    # A readable file event the indexer must refuse: its payload is not JSON.
    rejected = Envelope(**{**envelope.__dict__, "payload": b"<html>not json</html>"})
    return encode(rejected), [*rejected.headers(), *tag]


class PoisonSource:
    """Produces the poison straight into the events topic, paced, keyed like real traffic (so
    every partition gets the same mix), and remembers where each record landed."""

    def __init__(self, bootstrap: str, topic: str, seconds: float, seed: int = 4) -> None:
        self.topic = topic
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.kinds = [*UNREADABLE, "handler-rejects"] * POISON_EACH
        self.rng.shuffle(self.kinds)
        self.landed: list[tuple[str, int, int, bytes, bytes]] = []  # kind, partition, offset, key, value
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PoisonSource:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        for n, kind in enumerate(self.kinds):
            value, headers = poison(kind, self.rng, n)
            key = WORKSPACES[n % len(WORKSPACES)].encode()

            def landed(
                err: object, msg: object, kind: str = kind, key: bytes = key, value: bytes = value
            ) -> None:
                if err is None:
                    self.landed.append((kind, msg.partition(), msg.offset(), key, value))  # type: ignore[attr-defined]

            self._producer.produce(self.topic, value, key, headers=kafka_headers(headers), on_delivery=landed)
            self._producer.poll(0)
            time.sleep(self.seconds / len(self.kinds))
        assert self._producer.flush(30) == 0
        self._producer = None  # type: ignore[assignment]  # its threads would outlive the cluster


def webhook(keys: SigningKeys, n: int) -> Webhook:
    """Every twelfth event carries the mark that makes the destination refuse it."""
    return fastio_webhook(keys.fastio, n, name=REJECT_MARK if n % 12 == 5 else "report")


def check_dead_letters(dlq: list[Record], source: PoisonSource, topic: str) -> list[str]:
    """Every poison record in the DLQ exactly once per group that should refuse it, intact."""
    problems = []
    by_origin: dict[tuple[str, int, int], list[Record]] = {}
    for rec in dlq:
        where_from = rec.header("dlq.original.partition"), rec.header("dlq.original.offset")
        origin = (rec.header("dlq.group") or "", int(where_from[0] or -1), int(where_from[1] or -1))
        by_origin.setdefault(origin, []).append(rec)
    for kind, partition, offset, key, value in source.landed:
        failing = GROUPS if kind in UNREADABLE else ("indexer",)
        for group in GROUPS:
            found = by_origin.get((group, partition, offset), [])
            where = f"{kind} {partition}:{offset} in group {group}"
            if group not in failing:
                if found:
                    problems.append(f"{where}: dead-lettered by a group that can process it")
                continue
            if len(found) != 1:
                problems.append(f"{where}: {len(found)} DLQ records, expected 1")
                continue
            rec = found[0]
            missing = [h for h in DLQ_HEADERS if not rec.header(h)]
            if missing:
                problems.append(f"{where}: headers missing {missing}")
            if rec.header("dlq.original.topic") != topic:
                problems.append(f"{where}: dlq.original.topic {rec.header('dlq.original.topic')}")
            if (rec.key, rec.value) != (key, value):
                problems.append(f"{where}: key or value bytes changed")
            if rec.header("x-poison") != kind:
                problems.append(f"{where}: the original headers were not kept")
    return problems


def test_poison_storm_then_a_bad_deploy(
    healthy_cluster: LocalCluster,
    make_pipeline: PipelineFactory,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    receiver.status_for = lambda body: 400 if REJECT_MARK.encode() in body else 200
    pipeline = make_pipeline(HOOKSTREAM_BREAKER_WINDOW=str(BREAKER_WINDOW), HOOKSTREAM_BREAKER_RATIO="0.5")
    producer = pipeline.producer(workers=2)
    members: dict[str, Proc] = dict(zip(GROUPS, pipeline.start_groups(GROUPS), strict=True))
    wait_for_status(producer.base_url + "/readyz")

    # Act 1: the storm.
    storm = LoadGenerator(producer.base_url, lambda n: webhook(keys, n), count=240, rate_per_s=12, retries=2)
    source = PoisonSource(healthy_cluster.bootstrap_servers, pipeline.topic, seconds=20).start()
    storm.run()
    source.join()
    lag_after_storm = wait_caught_up(pipeline, GROUPS)
    breakers_after_storm = {
        g: m.metric("hookstream_consumer_circuit_open", group=g) for g, m in members.items()
    }
    dlq_after_storm = read_all(pipeline.bootstrap, pipeline.dlq_topic)
    assert len(source.landed) == 4 * POISON_EACH, "not every poison record reached the topic"
    assert set(breakers_after_storm.values()) == {0}, (
        f"a breaker tripped in the storm: {breakers_after_storm}"
    )
    assert not any(lag_after_storm.values()), f"lag after the storm: {lag_after_storm}"
    problems = check_dead_letters(dlq_after_storm, source, pipeline.topic)
    assert not problems, f"{len(problems)} DLQ problems, e.g. {problems[:5]}"

    # Act 2: a bad deploy downstream: every notification is refused.
    act2_from = datetime.now(UTC)
    receiver.status_for = lambda body: 400
    deploy = LoadGenerator(
        producer.base_url,
        lambda n: fastio_webhook(keys.fastio, 1000 + n),
        count=200,
        rate_per_s=20,
        retries=2,
    ).run()
    notifier = members["notifier"]
    deadline = time.monotonic() + 120
    while (open_gauge := notifier.metric("hookstream_consumer_circuit_open", group="notifier")) != 1:
        if time.monotonic() > deadline or not notifier.alive:
            break
        time.sleep(1)
    tripped = open_gauge == 1
    # A tripped member idles (its gauge stays scrapable) until told to stop; then it fails.
    tripped_exit = notifier.stop()
    tripped_log = notifier.tail(20)
    others_lag = wait_caught_up(pipeline, ("indexer", "archiver"))
    act2_letters = [
        r
        for r in read_all(pipeline.bootstrap, pipeline.dlq_topic)
        if r.header("dlq.group") == "notifier" and r.header("event_id") in deploy.sent()
    ]

    # Act 3: fixed; restart the notifier and replay what it refused during act 2.
    receiver.status_for = lambda body: 400 if REJECT_MARK.encode() in body else 200
    notifier.start()
    replay = pipeline.cli("dlq", "replay", "--group", "notifier", "--since", act2_from.isoformat())
    evidence.sent([*storm.webhooks.values(), *deploy.webhooks.values()])
    final_lag = wait_caught_up(pipeline, GROUPS)  # the replays are on the events topic too

    books = close_books(
        "4-poison-storm",
        pipeline,
        receiver,
        ledger,
        storm.sent() | deploy.sent(),
        storm.accepted() | deploy.accepted(),
        notes={
            "poison": dict(Counter(kind for kind, *_ in source.landed)),
            "notifier_dlq_in_bad_deploy": len(act2_letters),
            "breaker_tripped": tripped,
        },
    )

    assert tripped, "the notifier kept dead-lettering every record: its breaker never tripped"
    assert tripped_exit not in (0, None), f"a tripped member exited with {tripped_exit}"
    assert "circuit breaker" in tripped_log, tripped_log
    assert 0 < len(act2_letters) <= BREAKER_WINDOW, f"{len(act2_letters)} records drained into the DLQ"
    assert not any(others_lag.values()), f"indexer/archiver stalled during the bad deploy: {others_lag}"

    assert replay.returncode == 0, replay.stdout + replay.stderr
    replayed = {e for r in act2_letters if (e := r.header("event_id"))}
    notified = receiver.event_ids()
    assert not [e for e in replayed if not notified[e]], "replayed events never reached the notifier"
    assert books.row.ok, books.explain()  # a replay the archiver took too is a duplicate here
    assert not any(final_lag.values()), f"lag at the end: {final_lag}"
