"""The CLI against a real broker with project settings that once leaked into librdkafka."""

import subprocess
import sys
import uuid
from pathlib import Path

HOOKSTREAM = Path(sys.executable).with_name("hookstream")


def test_project_kafka_settings_do_not_break_topics_create(kafka_bootstrap: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "HOOKSTREAM_TOPIC": f"events-{suffix}",
        "HOOKSTREAM_DLQ_TOPIC": f"dlq-{suffix}",
        # Both reached librdkafka as "home" and "delivery.timeout.ms" under the old shared prefix.
        "HOOKSTREAM_KAFKA_HOME": str(tmp_path),
        "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": "3",
    }
    result = subprocess.run(
        [str(HOOKSTREAM), "topics", "create", "--partitions", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [line.split(" (")[0] for line in result.stdout.splitlines()] == [
        f"created events-{suffix}",
        f"created dlq-{suffix}",
    ]
