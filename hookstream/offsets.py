"""A consumer group's offsets: read them, and move them for a backfill or a replay.

Nothing here joins the group it looks at: requests go through the AdminClient, and committed
offsets are read by a consumer that takes the group's id but never subscribes.
Moving offsets is refused while the group has members: a live member would overwrite the
new positions with its own next commit, and the plan would change under the operator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from hookstream.admin import Admin, denial, refusal
from hookstream.errors import HookstreamError
from hookstream.kafka_access import denied, explain, watched

TIMEOUT_S = 15.0

# (topic, partition): the key every map in this module and in lag.py uses.
Partition = tuple[str, int]

T = TypeVar("T")


class OffsetsError(HookstreamError):
    """Offsets of a consumer group could not be read or moved."""


class GroupActiveError(OffsetsError):
    """The group has live members, so its offsets must not be moved now."""


def _result(admin: AdminClient, future: Future[T], what: str, needs: tuple[str, str] | None = None) -> T:
    """The future's value; else an `OffsetsError` naming the missing ACL (`needs`: operation,
    resource) or why Kafka could not be reached."""
    try:
        return future.result()
    except KafkaException as exc:
        raise OffsetsError(refusal(admin, exc, what, needs)) from exc


def list_groups(admin: AdminClient) -> list[str]:
    # Kafka lists only the groups this user may DESCRIBE: no ACL error, just fewer groups.
    futures = admin.list_consumer_groups(request_timeout=TIMEOUT_S)
    listing = _result(admin, futures, "cannot list consumer groups")
    if listing.errors and not listing.valid:
        # No broker answered (refused, or down): the listing is empty, which is no answer.
        raise OffsetsError(refusal(admin, listing.errors[0], "cannot list consumer groups"))
    return sorted(group.group_id for group in listing.valid)


def active_members(admin: AdminClient, group: str) -> int:
    """How many members the group has right now (0 for an empty or unknown group)."""
    futures = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)
    description = _result(
        admin, futures[group], f"cannot describe group {group}", ("DESCRIBE", f"group {group}")
    )
    return len(description.members)


def committed_offsets(admin: Admin, group: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """The offset `group` has committed on each of `partitions` that has one.

    Not `AdminClient.list_consumer_group_offsets`: librdkafka (2.16 still) crashes the whole
    process when a coordinator answers that request with NOT_COORDINATOR, as it does while it
    moves or loads (confluentinc/librdkafka#5040). A consumer's own offset fetch handles it.
    """
    wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
    if not wanted:
        return {}
    conf, watch = watched(admin.conf)
    reader = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    what = f"cannot read the committed offsets of group {group}"
    try:
        found = reader.committed(wanted, timeout=TIMEOUT_S)
    except KafkaException as exc:
        # A group this user may not DESCRIBE is no answer but a timeout: the denial waits on
        # the consumer's queue.
        error = _queued_error(reader) or exc.args[0]
        raise OffsetsError(explain(error, what, watch, ("DESCRIBE", f"group {group}"))) from exc
    finally:
        reader.close()
    for tp in found:
        if tp.error is not None:
            line = denied(tp.error, "DESCRIBE", f"topic {tp.topic}", watch.conf)
            raise OffsetsError(line or f"{what}: {tp.topic}[{tp.partition}]: {tp.error.str()}")
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}


def _queued_error(consumer: Consumer) -> KafkaError | None:
    msg = consumer.poll(0.5)
    return msg.error() if msg is not None else None


def topic_partitions(admin: AdminClient, topic: str) -> list[Partition]:
    try:
        metadata = admin.list_topics(topic=topic, timeout=TIMEOUT_S).topics.get(topic)
    except KafkaException as exc:
        raise OffsetsError(refusal(admin, exc, f"cannot read the metadata of topic {topic}")) from exc
    if metadata is not None and metadata.error is not None:
        line = denial(admin, metadata.error, "DESCRIBE", f"topic {topic}")
        if line is not None:
            raise OffsetsError(line)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise OffsetsError(f"topic {topic} does not exist (see `hookstream topics create`)")
    return [(topic, partition) for partition in sorted(metadata.partitions)]


def list_offsets(admin: AdminClient, specs: Mapping[Partition, OffsetSpec]) -> dict[Partition, int]:
    """The offset each OffsetSpec names, per partition (-1 when a timestamp is after every record)."""
    if not specs:
        return {}
    futures = admin.list_offsets(
        {TopicPartition(topic, partition): spec for (topic, partition), spec in specs.items()},
        request_timeout=TIMEOUT_S,
    )
    return {
        (tp.topic, tp.partition): _result(
            admin,
            future,
            f"cannot list offsets of {tp.topic}[{tp.partition}]",
            ("DESCRIBE", f"topic {tp.topic}"),
        ).offset
        for tp, future in futures.items()
    }


def watermarks(admin: AdminClient, partitions: Iterable[Partition]) -> dict[Partition, tuple[int, int]]:
    """(first retained offset, end offset) per partition."""
    wanted = list(partitions)
    starts = list_offsets(admin, {p: OffsetSpec.earliest() for p in wanted})
    ends = list_offsets(admin, {p: OffsetSpec.latest() for p in wanted})
    return {p: (starts[p], ends[p]) for p in wanted}


# -- reset ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetTarget:
    """Where to move a group: the first retained record, the end, or the first record at or after `at`."""

    kind: Literal["earliest", "latest", "datetime"]
    at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.kind == "datetime") != (self.at is not None):
            raise ValueError("a datetime target needs `at`, and only it does")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("the target datetime must carry a timezone")

    def describe(self) -> str:
        return self.at.isoformat() if self.at is not None else self.kind


@dataclass(frozen=True)
class OffsetMove:
    topic: str
    partition: int
    current: int | None  # None: the group has no committed offset here yet
    new: int

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "current": self.current, "new": self.new}


def plan_reset(admin: Admin, group: str, topic: str, target: ResetTarget) -> list[OffsetMove]:
    """Where each partition of `topic` would move; refuses while the group has members."""
    members = active_members(admin, group)
    if members:
        raise GroupActiveError(
            f"group {group} has {members} active member(s); stop them first (scale its Deployment to 0"
            " or stop `hookstream consume`), then reset: a live member would overwrite the new offsets"
        )
    partitions = topic_partitions(admin, topic)
    marks = watermarks(admin, partitions)
    if target.kind == "datetime":
        assert target.at is not None  # guaranteed by ResetTarget
        millis = int(target.at.timestamp() * 1000)
        found = list_offsets(admin, {p: OffsetSpec.for_timestamp(millis) for p in partitions})
        # No record at or after the time: the group starts at the end, with nothing to replay.
        new = {p: found[p] if found[p] >= 0 else marks[p][1] for p in partitions}
    else:
        new = {p: marks[p][0] if target.kind == "earliest" else marks[p][1] for p in partitions}
    committed = committed_offsets(admin, group, partitions)
    return [OffsetMove(t, n, committed.get((t, n)), new[(t, n)]) for t, n in partitions]


def apply_reset(admin: AdminClient, group: str, moves: list[OffsetMove]) -> None:
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(move.topic, move.partition, move.new) for move in moves]
    )
    futures = admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
    altered = _result(
        admin, futures[group], f"cannot move the offsets of group {group}", ("READ", f"group {group}")
    )
    failed = [tp for tp in altered.topic_partitions if tp.error is not None]
    for tp in failed:
        # Kafka answers an OffsetCommit per partition: no READ on the group, or on the topic.
        on_group = tp.error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        line = denial(admin, tp.error, "READ", f"group {group}" if on_group else f"topic {tp.topic}")
        if line is not None:
            raise OffsetsError(line)
    if failed:
        detail = ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error.str()}" for tp in failed)
        raise OffsetsError(f"group {group}: some offsets were not moved: {detail}")
