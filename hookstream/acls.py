"""The least privileges each Hookstream client needs on a secured Kafka cluster.

One user (principal `User:<name>`) per role. The same principal name comes from a SCRAM user
or from the common name of a client certificate (with the broker's mapping rule
`RULE:^CN=([^,]+)$/$1/`), so the grants below hold for either. docs/security.md explains each
line; `hookstream kafka start --secure` creates exactly these on the local broker, and the
tests in tests/integration/security/ prove that each role works with them and nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from hookstream.errors import HookstreamError
from hookstream.settings import Settings

ResourceKind = Literal["topic", "group", "cluster"]
CLUSTER = "kafka-cluster"  # the one name Kafka gives the cluster resource
# confluent-kafka calls Kafka's CLUSTER resource type BROKER (the same wire value).
_RESOURCE_TYPES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER}

# Group ids of the readers that only assign partitions (consumers/dlq.py, hookstream/lag.py).
DLQ_READER_GROUP_PREFIX = "hookstream-dlq-reader-"
LAG_READER_GROUP = "hookstream-lag-reader"

SCRAM_ITERATIONS = 8192

# Roles that are not a consumer group. Each group's user is named like the group.
PRODUCER, REPLAY, TOPICS, LAG, OFFSETS = "producer", "replay", "topics", "lag", "offsets"


@dataclass(frozen=True)
class Grant:
    """ALLOW `operation` on one resource (a literal name, or every name with a prefix)."""

    operation: str  # an AclOperation name: READ, WRITE, DESCRIBE, CREATE, IDEMPOTENT_WRITE
    kind: ResourceKind
    name: str
    prefixed: bool = False

    def describe(self) -> str:
        pattern = "names starting with " if self.prefixed else ""
        return f"{self.operation} on {self.kind} {pattern}{self.name}"

    def binding(self, user: str) -> AclBinding:
        return AclBinding(
            _RESOURCE_TYPES[self.kind],
            self.name,
            ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL,
            f"User:{user}",
            "*",
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )


def role_grants(settings: Settings, groups: Iterable[str]) -> dict[str, tuple[Grant, ...]]:
    """User name -> what it is granted, for a deployment's topics and its consumer groups."""
    events, dlq = settings.topic, settings.dlq_topic
    names = list(groups)
    group_ids = [settings.consumer_group_prefix + g for g in names]
    roles: dict[str, tuple[Grant, ...]] = {
        # IDEMPOTENT_WRITE: the producer is idempotent (acks=all, enable.idempotence).
        PRODUCER: (
            Grant("WRITE", "topic", events),
            Grant("DESCRIBE", "topic", events),
            Grant("IDEMPOTENT_WRITE", "cluster", CLUSTER),
        ),
        # `dlq replay` (and `dlq list`/`show`) read the DLQ by assignment under a throwaway group
        # id, hookstream-dlq-reader-<random> (consumers/dlq.py). It never commits, but a
        # consumer with a group id still looks up its coordinator: DESCRIBE on those groups.
        REPLAY: (
            Grant("READ", "topic", dlq),
            Grant("WRITE", "topic", events),
            Grant("DESCRIBE", "group", DLQ_READER_GROUP_PREFIX, prefixed=True),
        ),
        # `topics create` looks the topics up (DESCRIBE) before creating the missing ones.
        TOPICS: (
            Grant("CREATE", "topic", events),
            Grant("DESCRIBE", "topic", events),
            Grant("CREATE", "topic", dlq),
            Grant("DESCRIBE", "topic", dlq),
        ),
        # `lag` lists and describes the groups, reads their offsets and the topic's ends, and
        # reads one record per lagging partition for its timestamp (lag in seconds).
        LAG: (
            Grant("READ", "topic", events),
            *(Grant("DESCRIBE", "group", g) for g in group_ids),
            # the record reader's own group id (hookstream/lag.py): assigned, never committed,
            # but its coordinator is looked up
            Grant("DESCRIBE", "group", LAG_READER_GROUP),
        ),
        # `offsets reset` commits offsets on the group's behalf: Kafka's OffsetCommit wants
        # READ on the group and READ on the topic.
        OFFSETS: (
            Grant("READ", "topic", events),
            *(Grant("READ", "group", g) for g in group_ids),
        ),
    }
    for group, group_id in zip(names, group_ids, strict=True):
        roles[group] = (
            Grant("READ", "topic", events),
            Grant("READ", "group", group_id),
            Grant("WRITE", "topic", dlq),
        )
    return roles


def apply_grants(admin: AdminClient, grants: Mapping[str, Iterable[Grant]], timeout_s: float = 30.0) -> None:
    """Create every grant (creating an ACL that exists already is a no-op in Kafka)."""
    bindings = [grant.binding(user) for user, some in grants.items() for grant in some]
    if not bindings:
        return
    for binding, future in admin.create_acls(bindings, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            raise HookstreamError(f"cannot create the ACL {binding}: {exc.args[0].str()}") from exc


def set_scram_passwords(admin: AdminClient, passwords: Mapping[str, str], timeout_s: float = 30.0) -> None:
    """Create each SCRAM-SHA-512 user, or set its password (Kafka keeps only a salted hash)."""
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password.encode()
        )
        for user, password in passwords.items()
    ]
    if not upserts:
        return
    for user, future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            raise HookstreamError(f"cannot set the SCRAM password of {user}: {exc.args[0].str()}") from exc
