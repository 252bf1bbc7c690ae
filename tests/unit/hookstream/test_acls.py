"""The grants each role gets: what docs/security.md lists, for the deployment's names."""

from __future__ import annotations

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from hookstream.acls import CLUSTER, Grant, role_grants
from hookstream.settings import Settings

SETTINGS = Settings(topic="events", dlq_topic="dlq", consumer_group_prefix="prod-")
GROUPS = ("indexer", "notifier")


def _described(user: str) -> set[str]:
    return {g.describe() for g in role_grants(SETTINGS, GROUPS)[user]}


def test_the_roles() -> None:
    assert set(role_grants(SETTINGS, GROUPS)) == {"producer", "replay", "topics", "lag", "offsets", *GROUPS}


def test_the_producer_writes_and_reads_nothing() -> None:
    assert _described("producer") == {
        "WRITE on topic events",
        "DESCRIBE on topic events",
        f"IDEMPOTENT_WRITE on cluster {CLUSTER}",
    }


def test_a_group_reads_the_events_and_its_own_group_and_writes_the_dlq() -> None:
    assert _described("indexer") == {
        "READ on topic events",
        "READ on group prod-indexer",
        "WRITE on topic dlq",
    }


def test_replay_lag_offsets_and_topics() -> None:
    assert _described("replay") == {
        "READ on topic dlq",
        "WRITE on topic events",
        "DESCRIBE on group names starting with hookstream-dlq-reader-",
    }
    assert _described("lag") == {
        "READ on topic events",
        "DESCRIBE on group prod-indexer",
        "DESCRIBE on group prod-notifier",
        "DESCRIBE on group hookstream-lag-reader",
    }
    assert _described("offsets") == {
        "READ on topic events",
        "READ on group prod-indexer",
        "READ on group prod-notifier",
    }
    assert _described("topics") == {
        "CREATE on topic events",
        "DESCRIBE on topic events",
        "CREATE on topic dlq",
        "DESCRIBE on topic dlq",
    }


def test_a_grant_becomes_kafkas_acl_binding() -> None:
    binding = Grant("DESCRIBE", "group", "hookstream-dlq-reader-", prefixed=True).binding("replay")
    assert binding.restype == ResourceType.GROUP
    assert binding.resource_pattern_type == ResourcePatternType.PREFIXED
    assert binding.principal == "User:replay" and binding.host == "*"
    assert binding.operation == AclOperation.DESCRIBE
    assert Grant("IDEMPOTENT_WRITE", "cluster", CLUSTER).binding("producer").restype == ResourceType.BROKER
