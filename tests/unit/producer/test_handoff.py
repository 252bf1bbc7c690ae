"""An ack reaches its waiting request from librdkafka's native thread, under threads and under
gevent, and under gevent nothing blocks the hub while requests wait."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

from producer.handoff import ThreadHandoff, for_this_worker


def test_threads_each_wait_on_their_own_slot() -> None:
    handoff = for_this_worker()
    assert isinstance(handoff, ThreadHandoff)  # nothing patched here
    slots = [handoff.slot() for _ in range(20)]
    error: Any = object()  # what librdkafka passes for a failed record (a KafkaError)
    waited: list[bool] = []

    def wait(slot: Any) -> None:
        waited.append(slot.wait(10))

    waiters = [threading.Thread(target=wait, args=(slot,)) for slot in slots]
    for waiter in waiters:
        waiter.start()

    def librdkafka() -> None:  # a native thread, as the poll thread is
        for n, slot in enumerate(slots):
            slot.deliver(error if n == 3 else None, None)

    handoff.start_thread(librdkafka)
    for waiter in waiters:
        waiter.join(10)
    assert waited == [True] * 20
    assert [slot.error for slot in slots].count(error) == 1 and slots[3].error is error


def test_a_slot_nobody_delivers_times_out() -> None:
    slot = ThreadHandoff().slot()
    started = time.monotonic()
    assert slot.wait(0.05) is False
    assert time.monotonic() - started >= 0.05
    slot.deliver(None, None)  # a late ack after the request gave up is harmless


GEVENT_WORKER = """
from gevent import monkey
monkey.patch_all()
import time, gevent
from producer.handoff import GeventHandoff, for_this_worker

handoff = for_this_worker()
assert isinstance(handoff, GeventHandoff), handoff
ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.005)) for _ in range(1000)])
native_sleep = monkey.get_original("time", "sleep")
slots = [handoff.slot() for _ in range(50)]

def librdkafka():  # a native thread, as the poll thread is
    native_sleep(0.2)
    for slot in slots:
        slot.deliver(None, None)

handoff.start_thread(librdkafka)
waits = gevent.joinall([gevent.spawn(slot.wait, 5) for slot in slots], timeout=10)
assert [w.value for w in waits] == [True] * 50
during_wait = len(ticks)
handoff.blocking(lambda: native_sleep(0.2))  # a call blocking in C, e.g. list_topics
assert len(ticks) - during_wait >= 10, "the hub was blocked by the blocking call"
assert during_wait >= 10, "the hub was blocked while greenlets waited"
assert handoff.slot().wait(0.05) is False
print("ok", during_wait)
"""


def test_greenlets_are_woken_through_the_hub_which_never_blocks() -> None:
    result = subprocess.run([sys.executable, "-c", GEVENT_WORKER], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
