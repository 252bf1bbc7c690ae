import uuid

from hookstream.admin import TopicSpec, admin_client, ensure_topics
from hookstream.settings import Settings


def test_ensure_topics_creates_once_then_finds(kafka_bootstrap: str) -> None:
    admin = admin_client(Settings(kafka_bootstrap_servers=kafka_bootstrap))
    name = f"topic-{uuid.uuid4().hex[:8]}"
    first = ensure_topics(admin, [TopicSpec(name, 3)])
    second = ensure_topics(admin, [TopicSpec(name, 5)])
    assert [r.created for r in first] == [True]
    assert [r.created for r in second] == [False]
    # Found as it is: an existing topic is never silently repartitioned.
    assert second[0].partitions == 3
    assert second[0].describe().startswith(f"found {name} (partitions=3")
