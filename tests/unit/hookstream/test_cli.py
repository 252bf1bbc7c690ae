"""The CLI's failure modes: one line on stderr saying what to do, and a non-zero exit."""

import subprocess
import sys
from pathlib import Path

HOOKSTREAM = Path(sys.executable).with_name("hookstream")


def run(*args: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    # No JDK folders either: with PATH alone, the runner must find no Java.
    env = {"PATH": path, "HOOKSTREAM_DEV_JVM_DIRS": ""}
    return subprocess.run([str(HOOKSTREAM), *args], capture_output=True, text=True, env=env, timeout=60)


def test_missing_java_is_one_line_naming_what_to_install(tmp_path: Path) -> None:
    result = run("kafka", "start", "--home", str(tmp_path), path=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "no Java 17+ found" in result.stderr
    assert "apt-get install openjdk-17" in result.stderr


def test_kafka_status_of_a_cluster_never_started_exits_non_zero(tmp_path: Path) -> None:
    result = run("kafka", "status", "--home", str(tmp_path))
    assert result.returncode == 1
    assert "stopped" in result.stdout


def test_unknown_node_is_one_line(tmp_path: Path) -> None:
    result = run("kafka", "kill", "7", "--home", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "hookstream: node 7 does not exist: nodes are 1..1"


def test_help_lists_every_subcommand() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in ("kafka", "topics", "producer", "send", "consume", "dlq", "lag", "offsets"):
        assert name in result.stdout
