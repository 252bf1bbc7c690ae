"""The state store contract, run against every backend (embedded SQLite and a real Redis).

What callers rely on: SET NX semantics (exactly one of many concurrent adders wins, across
processes too), TTLs (an expired key is absent and can be added again), compare-and-delete,
one-round-trip add_many, lazily opened clients, and StateStoreUnavailable (never a raw client
error) when the store cannot be reached.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hookstream.errors import StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import StateStore, open_store, state_key
from hookstream_dev.process import free_port_block


@pytest.fixture
def store(state_settings: Settings) -> Iterator[StateStore]:
    opened = open_store(state_settings)
    try:
        yield opened
    finally:
        opened.close()


def _key(settings: Settings, *parts: str) -> str:
    return state_key(settings.topic, "contract", *parts)


def test_add_is_set_if_absent(store: StateStore, state_settings: Settings) -> None:
    key = _key(state_settings, "e1")
    assert store.add(key, 60, "first") is True
    assert store.add(key, 60, "second") is False
    assert store.get(key) == "first"


def test_get_of_an_absent_key_is_none(store: StateStore, state_settings: Settings) -> None:
    assert store.get(_key(state_settings, "never")) is None


def test_put_overwrites_and_renews(store: StateStore, state_settings: Settings) -> None:
    key = _key(state_settings, "p")
    store.put(key, "a", 0.2)
    store.put(key, "b", 60)
    time.sleep(0.4)
    assert store.get(key) == "b"


def test_put_many_overwrites_each_key_and_sets_a_ttl(store: StateStore, state_settings: Settings) -> None:
    keys = [_key(state_settings, f"pm{i}") for i in range(3)]
    assert store.add(keys[0], 60, "pending")
    store.put_many(keys, "acked", 60)
    assert [store.get(key) for key in keys] == ["acked"] * 3
    store.put_many(keys[1:], "short", 0.2)
    store.put_many([], "none", 60)
    time.sleep(0.5)
    assert [store.get(key) for key in keys] == ["acked", None, None]


def test_an_expired_key_is_absent_and_can_be_added_again(store: StateStore, state_settings: Settings) -> None:
    key = _key(state_settings, "ttl")
    assert store.add(key, 0.2, "old")
    time.sleep(0.5)
    assert store.get(key) is None
    assert store.delete(key) is False
    assert store.add(key, 60, "new") is True
    assert store.get(key) == "new"


def test_add_many_answers_per_key_in_order(store: StateStore, state_settings: Settings) -> None:
    keys = [_key(state_settings, f"k{i}") for i in range(5)]
    assert store.add(keys[1], 60) and store.add(keys[3], 60)
    assert store.add_many(keys, 60) == [True, False, True, False, True]
    assert store.add_many(keys, 60) == [False] * 5
    assert store.add_many([], 60) == []
    assert all(store.get(key) == "1" for key in keys)


def test_add_many_stores_the_values_given(store: StateStore, state_settings: Settings) -> None:
    keys = [_key(state_settings, f"v{i}") for i in range(3)]
    assert store.add(keys[1], 60, "earlier")
    assert store.add_many(keys, 60, ["a", "b", "c"]) == [True, False, True]
    assert [store.get(key) for key in keys] == ["a", "earlier", "c"]


def test_add_many_adds_a_repeated_key_once_with_its_first_value(
    store: StateStore, state_settings: Settings
) -> None:
    """Two copies of one event in one batch: the first is the one added, with its value."""
    a, b = _key(state_settings, "dup-a"), _key(state_settings, "dup-b")
    assert store.add_many([a, b, a, a], 60, ["first", "b", "second", "third"]) == [True, True, False, False]
    assert (store.get(a), store.get(b)) == ("first", "b")


def test_claim_many_answers_the_value_each_key_holds(store: StateStore, state_settings: Settings) -> None:
    """A key this call sets answers its own value; a key another holds answers the holder's; a key
    twice in one call is set by its first occurrence."""
    a, b, c = (_key(state_settings, f"claim-{n}") for n in "abc")
    assert store.add(b, 60, "0:7")
    assert store.claim_many([a, b, c, a], 60, ["1:1", "1:2", "1:3", "1:4"]) == ["1:1", "0:7", "1:3", "1:1"]
    assert store.claim_many([a], 60, ["1:1"]) == ["1:1"]  # a redo of the same position: its own
    assert store.claim_many([], 60, []) == []
    assert (store.get(a), store.get(b), store.get(c)) == ("1:1", "0:7", "1:3")


def test_claim_many_of_new_and_expired_keys_sets_each(store: StateStore, state_settings: Settings) -> None:
    """Every key set by the call (new, or taken over once its TTL passed): each answers and holds
    the value given, and keeps it for the TTL."""
    old, new = _key(state_settings, "claim-old"), _key(state_settings, "claim-new")
    assert store.add(old, 0.2, "0:1")
    time.sleep(0.5)
    assert store.claim_many([old, new], 60, ["2:5", "2:6"]) == ["2:5", "2:6"]
    assert (store.get(old), store.get(new)) == ("2:5", "2:6")
    assert store.claim_many([old, new], 60, ["3:1", "3:2"]) == ["2:5", "2:6"]  # held now


def test_batches_of_a_thousand_keys_answer_per_key_in_order(
    store: StateStore, state_settings: Settings
) -> None:
    """A batch as large as a consumer's (SQLite writes it in several statements): held keys spread
    over the batch, and a key repeated far from its first occurrence, answer as in a small one."""
    keys = [_key(state_settings, f"big{i}") for i in range(1000)]
    held = set(range(0, 1000, 97))
    for i in held:
        assert store.add(keys[i], 60, "earlier")
    values = [f"v{i}" for i in range(1000)]
    expected_added = [i not in held for i in range(1000)]
    assert store.add_many([*keys, keys[5]], 60, [*values, "again"]) == [*expected_added, False]
    assert [store.get(keys[i]) for i in (0, 5, 97, 999)] == ["earlier", "v5", "earlier", "v999"]
    claims = [_key(state_settings, f"bigclaim{i}") for i in range(1000)]
    assert store.add(claims[700], 60, "0:1")
    answers = store.claim_many([*claims, claims[3]], 60, [*values, "late"])
    assert answers == [*values[:700], "0:1", *values[701:], "v3"]
    store.put_many(keys, "acked", 60)
    assert {store.get(key) for key in keys} == {"acked"}


def test_add_many_sets_a_ttl(store: StateStore, state_settings: Settings) -> None:
    keys = [_key(state_settings, f"short{i}") for i in range(3)]
    store.add_many(keys, 0.2)
    time.sleep(0.5)
    assert store.add_many(keys, 60) == [True, True, True]


def test_delete_and_compare_and_delete(store: StateStore, state_settings: Settings) -> None:
    key = _key(state_settings, "lock")
    assert store.add(key, 60, "token-a")
    assert store.delete(key, only_if="token-b") is False
    assert store.get(key) == "token-a"
    assert store.delete(key, only_if="token-a") is True
    assert store.get(key) is None
    assert store.delete(key) is False
    store.put(key, "x", 60)
    assert store.delete(key) is True


def test_keys_with_separators_stay_distinct(store: StateStore, state_settings: Settings) -> None:
    one = state_key(state_settings.topic, "sent", "a:b", "c", group="g")
    other = state_key(state_settings.topic, "sent", "a", "b:c", group="g")
    assert one != other
    assert store.add(one, 60) and store.add(other, 60)


def test_group_and_topic_namespace_keys() -> None:
    assert state_key("t", "sent", "e1", group="notifier") != state_key("t", "sent", "e1", group="archiver")
    assert state_key("t", "dedupe", "e1") != state_key("u", "dedupe", "e1")
    assert state_key("t", "dedupe", "e1").startswith("hookstream:t:")


def test_one_of_many_threads_wins_an_add(store: StateStore, state_settings: Settings) -> None:
    key = _key(state_settings, "race")
    start = threading.Barrier(8)
    wins: list[bool] = []

    def contend() -> None:
        start.wait()
        wins.append(store.add(key, 60))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def _contend_in_process(settings: Settings, keys: list[str], start: threading.Barrier, out: Path) -> None:
    store = open_store(settings)
    start.wait()
    won = [key for key in keys if store.add(key, 60)]
    out.write_text("\n".join(won))
    store.close()


def test_processes_sharing_the_store_win_each_key_once(state_settings: Settings, tmp_path: Path) -> None:
    """The point of the store: separate processes (gunicorn workers, members) see one state."""
    keys = [_key(state_settings, f"p{i}") for i in range(200)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    outs = [tmp_path / f"won-{i}" for i in range(3)]
    workers = [
        context.Process(target=_contend_in_process, args=(state_settings, keys, start, out)) for out in outs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    won = [line for out in outs for line in out.read_text().splitlines()]
    assert sorted(won) == sorted(keys)


def test_a_store_opened_before_a_fork_works_in_the_child(store: StateStore, state_settings: Settings) -> None:
    key = _key(state_settings, "fork")
    store.put(key, "parent", 60)  # the parent has a live connection before forking
    context = multiprocessing.get_context("fork")
    queue = context.SimpleQueue()

    def child() -> None:
        queue.put((store.get(key), store.add(_key(state_settings, "child"), 60)))

    process = context.Process(target=child)
    process.start()
    process.join(30)
    assert queue.get() == ("parent", True)
    assert store.get(_key(state_settings, "child")) == "1"  # the parent's connection still works


def test_opening_connects_nothing(state_settings: Settings, tmp_path: Path) -> None:
    unreachable = replace(
        state_settings,
        data_dir=tmp_path / "not-yet",
        redis_url=f"redis://127.0.0.1:{free_port_block(1)}/0" if state_settings.redis_url else None,
    )
    open_store(unreachable, timeout_s=0.2).close()
    assert not (tmp_path / "not-yet").exists()


def test_an_unreachable_store_raises_state_store_unavailable(
    state_settings: Settings, tmp_path: Path
) -> None:
    if state_settings.redis_url:
        broken = replace(state_settings, redis_url=f"redis://127.0.0.1:{free_port_block(1)}/0")
    else:
        blocker = tmp_path / "file-not-dir"
        blocker.write_text("")
        broken = replace(state_settings, data_dir=blocker / "data")  # cannot be created
    store = open_store(broken, timeout_s=0.5)
    for call in (
        lambda: store.add("k", 1),
        lambda: store.add_many(["k"], 1),
        lambda: store.claim_many(["k"], 1, ["v"]),
        lambda: store.get("k"),
        lambda: store.put("k", "v", 1),
        lambda: store.delete("k", only_if="v"),
        store.ping,
    ):
        with pytest.raises(StateStoreUnavailable):
            call()
    store.close()


def test_a_busy_store_raises_within_its_deadline(state_settings: Settings) -> None:
    """A store that holds its lock (SQLite) or stops answering (Redis) costs one deadline, not more."""
    store = open_store(state_settings, timeout_s=0.3)
    store.ping()
    with _stalled(state_settings):
        started = time.monotonic()
        with pytest.raises(StateStoreUnavailable):
            store.add(_key(state_settings, "busy"), 60)
        assert time.monotonic() - started < 5  # bounded by the deadline (loose: a shared 2-core box)
    store.close()


class _stalled:
    """SQLite: another process's write transaction holds the file; Redis: the server sleeps (DEBUG SLEEP)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._thread: threading.Thread | None = None

    def __enter__(self) -> None:
        if self.settings.redis_url:
            import redis

            def sleep() -> None:
                client = redis.Redis.from_url(str(self.settings.redis_url))
                client.execute_command("DEBUG", "SLEEP", "1.5")
                client.close()

            self._thread = threading.Thread(target=sleep)
            self._thread.start()
            time.sleep(0.2)
        else:
            import sqlite3

            self._db = sqlite3.connect(self.settings.data_dir / "state.sqlite3", isolation_level=None)
            self._db.execute("BEGIN EXCLUSIVE")

    def __exit__(self, *_: object) -> None:
        if self._thread is not None:
            self._thread.join()
        else:
            self._db.execute("ROLLBACK")
            self._db.close()


def test_a_store_recovers_once_it_answers_again(state_settings: Settings) -> None:
    store = open_store(state_settings, timeout_s=0.3)
    store.ping()  # the SQLite file exists
    with _stalled(state_settings), pytest.raises(StateStoreUnavailable):
        store.add(_key(state_settings, "during"), 60, "late")
    # A timed-out call may still take effect (Redis ran it after answering too late): callers
    # make what they wrote recognisable (a token) rather than assume it did not happen.
    assert store.get(_key(state_settings, "during")) in (None, "late")
    assert store.add(_key(state_settings, "after"), 60) is True
    store.close()
