"""The local broker from Maven Central jars: restart keeps data; misuse is a clear error."""

from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from hookstream.admin import TopicSpec, admin_client, ensure_topics
from hookstream.settings import Settings
from hookstream_dev.errors import LocalKafkaError
from hookstream_dev.kafka import LocalCluster
from hookstream_dev.process import free_port_block


def test_restart_keeps_what_the_broker_held(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "kafka", nodes=1, base_port=free_port_block(2), heap_mb=256)
    cluster.start()
    try:
        settings = Settings(kafka_bootstrap_servers=cluster.bootstrap_servers)
        ensure_topics(admin_client(settings), [TopicSpec("kept", 1)])
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
        producer.produce("kept", b"before-restart", key=b"k")
        assert producer.flush(15) == 0

        pid = cluster.status()[0].pid
        cluster.stop()
        assert not cluster.status()[0].running
        cluster.start()
        assert cluster.status()[0].pid != pid

        consumer = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap_servers,
                "group.id": "restart-check",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe(["kept"])
        try:
            values = []
            for _ in range(30):
                msg = consumer.poll(1.0)
                if msg is not None and msg.error() is None:
                    values.append(msg.value())
                    break
        finally:
            consumer.close()
        assert values == [b"before-restart"]
    finally:
        cluster.stop()
    assert all(not node.running for node in cluster.status())


def test_a_different_shape_on_the_same_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    home.mkdir()
    (home / "cluster.json").write_text('{"nodes": 1, "base_port": 9092, "cluster_id": "x"}')
    with pytest.raises(LocalKafkaError, match="kafka reset"):
        LocalCluster(home, nodes=3)
    assert LocalCluster(home).nodes == 1  # leaving the shape out reads the saved one


def test_unknown_node_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match=r"nodes are 1\.\.1"):
        LocalCluster(tmp_path).kill(2)
