"""The notifier group: event-name rules to Slack incoming webhooks or HTTP JSON endpoints.

Where notifications go, in order: the rules file (`HOOKSTREAM_NOTIFIER_RULES`), else every
event to `HOOKSTREAM_NOTIFY_URL`, else a log line per batch listing its events. A rules file looks like:

    rules:
      - events: ["workspace_storage_file_*", "file.*"]   # fnmatch patterns, case-insensitive
        workspaces: ["ws-123"]                           # optional: only these workspaces
        slack: https://hooks.slack.com/services/T000/B000/XXXX
      - events: ["*"]
        url: https://ops.example.com/hooks/files         # any HTTP endpoint: a JSON POST

Every matching rule fires. Timeouts, 5xx, 408, 425 and 429 are transient (retried by the
runtime); other 4xx and redirects (not followed) are permanent (DLQ). A notification sent to a
destination is recorded in the state store (`hookstream.state`: Redis when
`HOOKSTREAM_REDIS_URL` is set, else the host's SQLite file; by group, event_id and destination)
right after the destination accepts it, so a redelivered event never notifies a destination
twice: across restarts, and across members on other hosts when the store is Redis. What can
still repeat: the requests in flight when a member crashes between the destination's answer and
that record (one per workspace chain, at most `SENDERS`), and the sends of a member that lost
its partitions (a session timeout) while it finishes its batch, beside the new owner. Every
request carries `Idempotency-Key: <event_id>` so the receiver can drop those. A store that does
not answer is an `UnavailableError`: the record waits (paused) until it answers, and is never
notified without its record, never dead-lettered for it, never lost.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
import yaml

from consumers import payload
from consumers.errors import PermanentError, TransientError, UnavailableError
from consumers.handler import Handler, Record
from hookstream.errors import ConfigError, StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import StateStore, open_store, state_key
from schemas.codec import Envelope

log = logging.getLogger("hookstream.consumers.notifier")

_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_TIMEOUT_S = (3.0, 10.0)  # connect, read: bounded well inside max.poll.interval.ms
# How long a sent record is kept: Kafka's default retention (7 days) of the events topic and the
# DLQ. A record can come back until then (a crash, a rebalance, a DLQ replay, an offset reset),
# and must still find that it was sent; past it Kafka no longer holds the record to redeliver.
SENT_TTL_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Destination:
    kind: str  # "slack" or "http"
    url: str


@dataclass(frozen=True)
class Rule:
    patterns: tuple[str, ...]
    workspaces: frozenset[str] | None
    destination: Destination

    def matches(self, event_type: str, workspace_id: str | None) -> bool:
        if self.workspaces is not None and workspace_id not in self.workspaces:
            return False
        name = event_type.lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in self.patterns)


def destinations_for(rules: list[Rule], envelope: Envelope) -> list[Destination]:
    """Every destination a matching rule names, each once, in rule order."""
    found: dict[Destination, None] = {}
    for rule in rules:
        if rule.matches(envelope.event_type, envelope.workspace_id):
            found.setdefault(rule.destination)
    return list(found)


def _destination(url: str, kind: str, where: str) -> Destination:
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL")
    return Destination(kind, url)


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise ConfigError(f"{where} must be a non-empty string or list of strings")
    return tuple(items)


def parse_rules(document: object, source: str = "rules") -> list[Rule]:
    """Rules from a parsed YAML document; ConfigError naming the rule and field that is wrong."""
    raw = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: expected a top-level `rules:` list with at least one rule")
    rules = []
    for number, entry in enumerate(raw, 1):
        where = f"{source}: rule {number}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with `events` and `slack` or `url`")
        unknown = set(entry) - {"events", "workspaces", "slack", "url"}
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)}")
        patterns = _strings(entry.get("events"), f"{where} `events`")
        workspaces = None
        if "workspaces" in entry:
            workspaces = frozenset(_strings(entry["workspaces"], f"{where} `workspaces`"))
        targets = [kind for kind in ("slack", "url") if kind in entry]
        if len(targets) != 1:
            raise ConfigError(f"{where} needs exactly one of `slack` or `url`")
        kind = "slack" if targets[0] == "slack" else "http"
        url = entry[targets[0]]
        if not isinstance(url, str):
            raise ConfigError(f"{where} `{targets[0]}` must be a URL string")
        rules.append(Rule(patterns, workspaces, _destination(url, kind, where)))
    return rules


def load_rules(settings: Settings) -> list[Rule]:
    """The rules in effect; an empty list means: log each event instead of sending it."""
    if settings.notifier_rules is not None:
        path = settings.notifier_rules
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"HOOKSTREAM_NOTIFIER_RULES={path} cannot be read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"HOOKSTREAM_NOTIFIER_RULES={path} is not valid YAML: {exc}") from exc
        return parse_rules(document, str(path))
    if settings.notify_url:
        kind = "slack" if urlparse(settings.notify_url).hostname == "hooks.slack.com" else "http"
        return [Rule(("*",), None, _destination(settings.notify_url, kind, "HOOKSTREAM_NOTIFY_URL"))]
    return []


def message_body(destination: Destination, envelope: Envelope) -> dict[str, Any]:
    fields = payload.parse(envelope.payload)
    name = payload.file_name(fields) if fields is not None else None
    subject = name or envelope.object_id or envelope.event_id
    if destination.kind == "slack":
        return {"text": f"*{envelope.event_type}* in workspace `{envelope.workspace_id}`: {subject}"}
    return {
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        "provider": envelope.provider,
        "workspace_id": envelope.workspace_id,
        "object_id": envelope.object_id,
        "name": name,
        "occurred_at": envelope.occurred_at.isoformat() if envelope.occurred_at else None,
        "received_at": envelope.received_at.isoformat(),
        "payload": fields,
    }


class SentLog:
    """(event_id, destination) pairs already notified, in the state store under the group's name."""

    def __init__(self, store: StateStore, topic: str, group: str) -> None:
        self._store = store
        self._topic = topic
        self._group = group

    def _key(self, event_id: str, destination: Destination) -> str:
        return state_key(self._topic, "sent", event_id, destination.url, group=self._group)

    def contains(self, event_id: str, destination: Destination) -> bool:
        try:
            return self._store.get(self._key(event_id, destination)) is not None
        except StateStoreUnavailable as exc:
            raise UnavailableError(f"notifier sent records: {exc}") from exc

    def add(self, event_id: str, destination: Destination) -> None:
        try:
            self._store.put(self._key(event_id, destination), "1", SENT_TTL_S)
        except StateStoreUnavailable as exc:
            raise UnavailableError(f"notifier sent records: {exc}") from exc

    def close(self) -> None:
        self._store.close()


def post(session: requests.Session, destination: Destination, envelope: Envelope) -> None:
    """POST one notification; TransientError or PermanentError when it is not accepted.

    Redirects are not followed: requests would repeat a POST answered 301, 302 or 303 as a GET
    without its body, and count the GET's 200 as delivered. A 3xx is permanent (the URL needs
    fixing; then replay the DLQ). Errors name the host only: a URL may hold a secret
    (Slack's does, in its path)."""
    parts = urlparse(destination.url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    try:
        response = session.post(
            destination.url,
            json=message_body(destination, envelope),
            headers={"Idempotency-Key": envelope.event_id, "X-Hookstream-Event-Id": envelope.event_id},
            timeout=_TIMEOUT_S,
            allow_redirects=False,
        )
    except (requests.Timeout, requests.ConnectionError) as exc:
        reason = type(exc).__name__
        raise TransientError(f"{destination.kind} destination {host} unreachable: {reason}") from exc
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
        # The answer broke off after the request was sent: it may have been taken; the retry
        # carries the same Idempotency-Key.
        raise TransientError(f"{destination.kind} destination {host}: {type(exc).__name__}") from exc
    except requests.RequestException as exc:
        raise PermanentError(f"{destination.kind} destination {host}: {type(exc).__name__}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise PermanentError(
            f"{destination.kind} destination {host} answered {status} (a redirect, not followed):"
            " configure the URL it points to"
        )
    error = TransientError if status >= 500 or status in _TRANSIENT_STATUSES else PermanentError
    raise error(f"{destination.kind} destination {host} answered {status}")


# Workspaces notified side by side; one workspace's notifications are always sent in order.
SENDERS = 8

_Position = tuple[str, int, int]


class Notifier(Handler):
    """Sends each event's notifications; a batch's workspaces are notified side by side.

    `start_batch` starts one chain per workspace on a small thread pool: each chain sends its
    records in order and stops at its first failure, leaving the rest of that workspace to
    `handle`, which the runtime calls per record in order: it takes the chain's outcome for the
    record (raising its error, so retry and DLQ work as for a synchronous send) or sends
    itself. `flush` stops chains whose records the runtime will not handle (a partition
    revoked, a shutdown) and waits for them, so no send outlives its batch.
    """

    def __init__(self, settings: Settings) -> None:
        self._rules = load_rules(settings)
        self._sent = (
            SentLog(open_store(settings), settings.topic, settings.consumer_group_prefix + "notifier")
            if self._rules
            else None
        )
        # requests.Session is not thread-safe: one per thread, each keeping its connections alive.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._early: dict[_Position, Future[None]] = {}  # cancelled: `handle` sends it itself
        # Sent, but the store did not take the record: the retry records them without sending again.
        self._unrecorded: set[tuple[str, str]] = set()
        self._settle = threading.Event()
        self._logged: list[dict[str, str | None]] = []

    def start_batch(self, records: list[Record]) -> None:
        if self._sent is None or len(records) < 2:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="notifier")
        chains: dict[str, list[tuple[Record, Future[None]]]] = {}
        for record in records:
            future: Future[None] = Future()
            self._early[_position(record)] = future
            chains.setdefault(record.envelope.partition_key, []).append((record, future))
        self._settle = threading.Event()
        for chain in chains.values():
            self._pool.submit(self._send_chain, chain, self._settle)

    def _send_chain(self, chain: list[tuple[Record, Future[None]]], settle: threading.Event) -> None:
        """Send a workspace's records in order until one fails, the batch settles, or `handle`
        took a record over (it cancels a send not started: the pool may be busy with other
        chains). From there `handle` sends the rest of the workspace itself, in order."""
        for record, future in chain:
            if settle.is_set() or not future.set_running_or_notify_cancel():
                return
            try:
                self._notify(record.envelope)
            except Exception as exc:
                future.set_exception(exc)
                return  # later records of this workspace wait for this one's retries
            future.set_result(None)

    def handle(self, record: Record) -> None:
        envelope = record.envelope
        if self._sent is None:
            self._logged.append(
                {
                    "event_id": envelope.event_id,
                    "event_type": envelope.event_type,
                    "workspace_id": envelope.workspace_id,
                    "object_id": envelope.object_id,
                }
            )
            return
        early = self._early.pop(_position(record), None)
        if early is not None and not early.cancel():  # its chain sent it, or is sending it
            early.result()  # waits for that one send; raises its error for the runtime
            return
        self._notify(envelope)

    def _notify(self, envelope: Envelope) -> None:
        assert self._sent is not None
        for destination in destinations_for(self._rules, envelope):
            pair = (envelope.event_id, destination.url)
            if pair not in self._unrecorded:
                if self._sent.contains(envelope.event_id, destination):
                    continue
                post(self._session(), destination, envelope)
                self._unrecorded.add(pair)
            self._sent.add(envelope.event_id, destination)
            self._unrecorded.discard(pair)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def flush(self) -> None:
        if self._logged:  # log-only mode: one line per batch, not one per event
            log.info("notifications", extra={"fields": {"count": len(self._logged), "events": self._logged}})
            self._logged = []
        if self._early:
            self._settle.set()
            for future in self._early.values():
                if not future.cancel():  # being sent: wait; the outcome no longer matters
                    future.exception()
            self._early.clear()

    def close(self) -> None:
        self._settle.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._early.clear()
        self._logged = []  # never flushed: their offsets were not stored, Kafka delivers them again
        for session in self._sessions:
            session.close()
        if self._sent is not None:
            self._sent.close()


def _position(record: Record) -> _Position:
    return record.topic, record.partition, record.offset
