"""The whole path on a secured broker, every process as its own role's user: the producer, each
group, a dead letter, `dlq replay`, `lag` and `offsets reset`; then no log holds a secret.

The archiver signs in with its client certificate (mTLS), everything else with SCRAM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.faults.harness import sinks
from tests.faults.harness.load import post, wait_for_status
from tests.faults.harness.logscan import forbidden_strings, scan_files, secret_file_strings
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.webhooks import SigningKeys, Webhook, fastio_webhook
from tests.fixtures.secure_kafka import SECURE_DLQ, SECURE_GROUPS, SECURE_TOPIC, SecureKafka
from tests.integration.security.helpers import one_line_error, role_env, run_as

pytestmark = pytest.mark.timeout(600)

MTLS_GROUPS = {"archiver"}


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


def _until(check: Callable[[], bool], what: str, pipeline: Pipeline, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            # The logs go with the failure: the session's temporary folders do not last.
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in pipeline.log_files())
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{tails}")
        time.sleep(1.0)


def _deliver(session: requests.Session, base_url: str, hook: Webhook) -> int | None:
    """POST as a sender does: a 503 (Kafka slow on a busy machine) is retried; the last status."""
    deadline = time.monotonic() + 60
    while True:
        status = post(session, base_url, hook, 30).status
        if status != 503 or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_every_role_does_its_part_with_its_own_user(
    secure_kafka: SecureKafka, receiver: NotificationReceiver, tmp_path: Path
) -> None:
    keys = SigningKeys.generate()
    pipeline = Pipeline(tmp_path, "unused", SECURE_TOPIC, SECURE_DLQ, keys, notify_url=receiver.url)
    cli_log = pipeline.log_dir / "cli.log"
    data_dir = str(pipeline.data_dir)  # dlq replay's ledger is the pipeline's, never ./data
    receiver.status_for = lambda body: 400 if b"refuse-me" in body else 200
    try:
        producer = pipeline.producer(workers=1, **secure_kafka.env("producer"))
        wait_for_status(producer.base_url + "/readyz", timeout_s=60)
        for group in SECURE_GROUPS:
            pipeline.member(group, wait=False, **secure_kafka.env(group, mtls=group in MTLS_GROUPS))
        for member in pipeline.procs[1:]:
            member.wait_ready()

        good = [fastio_webhook(keys.fastio, n) for n in range(3)]
        refused = fastio_webhook(keys.fastio, name="refuse-me")  # the destination answers 400
        with requests.Session() as session:
            answers = {h.event_id: _deliver(session, producer.base_url, h) for h in [*good, refused]}
        assert set(answers.values()) == {200}, answers
        every = {hook.event_id for hook in [*good, refused]}

        _until(lambda: set(sinks.index_rows(pipeline.data_dir)) >= every, "the indexer's rows", pipeline)
        _until(
            lambda: set(sinks.archive_records(pipeline.data_dir, SECURE_TOPIC)) >= every,
            "the archive",
            pipeline,
        )
        _until(lambda: set(receiver.event_ids()) >= {h.event_id for h in good}, "the notifications", pipeline)

        replay_env = role_env(secure_kafka, "replay", HOOKSTREAM_DATA_DIR=data_dir)

        def dead_letter_listed() -> bool:
            listing = run_as(replay_env, "dlq", "list", "--group", "notifier", log=cli_log)
            assert listing.returncode == 0, listing.stderr
            return refused.event_id in listing.stdout

        _until(dead_letter_listed, "the notifier's dead letter", pipeline)

        receiver.status_for = lambda body: 200  # the destination is fixed; replay the dead letter
        replayed = run_as(replay_env, "dlq", "replay", "--group", "notifier", log=cli_log)
        assert replayed.returncode == 0, replayed.stderr
        _until(lambda: refused.event_id in receiver.event_ids(), "the replayed notification", pipeline)

        lag_env = role_env(secure_kafka, "lag", HOOKSTREAM_DATA_DIR=data_dir)

        def caught_up() -> bool:
            result = run_as(lag_env, "lag", "--json", log=cli_log)
            assert result.returncode == 0, result.stderr
            groups = {g["group"]: g["total_lag_messages"] for g in json.loads(result.stdout)}
            return set(groups) == set(SECURE_GROUPS) and not any(groups.values())

        _until(caught_up, "every group caught up, as `lag` sees it", pipeline)

        # `offsets reset` as its own user, once the group has no member; `lag`'s user may not.
        pipeline.members("notifier")[0].stop()
        denied = run_as(lag_env, "offsets", "reset", "--group", "notifier", "--to-latest", log=cli_log)
        assert "READ on group notifier" in one_line_error(denied)
        offsets_env = role_env(secure_kafka, "offsets", HOOKSTREAM_DATA_DIR=data_dir)
        moved = run_as(offsets_env, "offsets", "reset", "--group", "notifier", "--to-latest", log=cli_log)
        assert moved.returncode == 0, moved.stderr
        assert "group notifier moved to latest" in moved.stdout
    finally:
        pipeline.stop()

    secrets = [*keys.all(), *secret_file_strings(secure_kafka.secret_files())]
    files = [*pipeline.log_files(), *secure_kafka.cluster.home.glob("node-*/logs/*.log")]
    leaks = scan_files(files, forbidden_strings(secrets, [*good, refused]))
    assert not leaks, f"{len(leaks)} leaks, e.g.\n" + "\n".join(map(str, leaks[:8]))
