"""Consumers on a topic holding both framings (before and after the switch to the registry),
and through a registry outage: waited out in place, nothing to the DLQ, flowing again after."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

from consumers.dlq import read_dead_letters
from consumers.runtime import Member
from hookstream.settings import Settings
from hookstream_dev.registry import LocalRegistry
from schemas import codec
from schemas.serializer import RegistryFraming, build_serializer
from tests.integration.consumers.consumer_helpers import (
    Recorder,
    Running,
    envelope,
    fast,
    produce,
    sample,
    unique,
    wait_until,
)


def _registry_framed(settings: Settings, numbers: range) -> list[codec.Envelope | tuple[bytes, bytes]]:
    serializer = build_serializer(settings)
    assert isinstance(serializer, RegistryFraming)
    items: list[codec.Envelope | tuple[bytes, bytes]] = []
    for n in numbers:
        item = envelope(n)
        items.append((item.partition_key.encode(), serializer.encode(item)))
    return items


def test_both_framings_on_one_topic_are_read_in_order(registry_settings: Settings) -> None:
    settings = fast(registry_settings)
    before = [envelope(n) for n in range(30)]  # written before the switch: b"H" framing
    produce(settings, [*before, *_registry_framed(settings, range(30, 60))])
    recorder = Recorder()
    running = Running(Member(settings, unique("mixed"), recorder))
    try:
        wait_until(lambda: len(recorder.handled()) >= 60, what="both framings handled")
    finally:
        running.stop()
    assert running.error is None
    assert sorted(recorder.handled()) == sorted(f"evt-{n}" for n in range(60))
    per_key: dict[str, list[int]] = {}
    for _, record in recorder.log:
        per_key.setdefault(record.envelope.partition_key, []).append(int(record.envelope.event_id[4:]))
    assert all(numbers == sorted(numbers) for numbers in per_key.values())  # order per key kept
    assert list(read_dead_letters(settings)) == []


def test_a_registry_outage_is_waited_out_never_dead_lettered(
    own_registry: LocalRegistry, settings: Settings
) -> None:
    """A hung registry (SIGSTOP: requests time out) is waited out by the same member.

    Not stop and start: the local registry keeps schemas in memory, so a restarted one would
    rightly call the id unknown (poison) to any request that beats the test's re-registration.
    A refused connection is transient too: test_registry_framing covers it.
    """
    settings = fast(replace(settings, schema_registry_url=own_registry.url))
    produce(settings, _registry_framed(settings, range(20)))
    pid = own_registry.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the member below has never seen the schema id: it must ask

    group = unique("outage")
    recorder = Recorder()
    running = Running(Member(settings, group, recorder))
    try:
        try:
            wait_until(lambda: sample("hookstream_consumer_retries_total", group=group) >= 2, what="retries")
            assert recorder.handled() == []
            assert running.error is None and running.thread.is_alive()
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: len(recorder.handled()) >= 20, 120, "records handled after the registry came back")
    finally:
        running.stop()
    assert running.error is None
    assert sorted(recorder.handled()) == sorted(f"evt-{n}" for n in range(20))
    assert list(read_dead_letters(settings)) == []
