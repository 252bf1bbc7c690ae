"""The CLI's failure modes: one line on stderr saying what to do, and a non-zero exit."""

import re
import subprocess
import sys
from pathlib import Path

from hookstream.cli import SUBCOMMANDS

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
ROOT = Path(__file__).parents[3]


def run(
    *args: str, path: str = "/usr/bin:/bin", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # No JDK folders either: with PATH alone, the runner must find no Java.
    full_env = {"PATH": path, "HOOKSTREAM_DEV_JVM_DIRS": "", **(env or {})}
    return subprocess.run([str(HOOKSTREAM), *args], capture_output=True, text=True, env=full_env, timeout=60)


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


def _listed_commands(help_text: str) -> list[str]:
    """The names in the "Commands:" section of click's help, one per indented line."""
    section = help_text.partition("\nCommands:\n")[2]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def test_help_lists_every_subcommand_with_its_summary() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert _listed_commands(result.stdout) == sorted(SUBCOMMANDS)
    for line in result.stdout.partition("\nCommands:\n")[2].splitlines():
        # Each one resolved: a summary beside the name, not a blank from a failed import.
        assert len(line.split()) > 1, line
    # And the registry is not short of what the documents tell a reader to run.
    documented = {
        match
        for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        for match in re.findall(r"(?:`|/)hookstream ([a-z]+)", path.read_text(encoding="utf-8"))
    }
    assert len(documented) >= 5
    assert documented <= set(_listed_commands(result.stdout))


def test_an_unknown_librdkafka_property_fails_at_start_in_one_line_naming_it() -> None:
    # Unreachable bootstrap servers: the refusal must come before any connection is tried.
    env = {"HOOKSTREAM_LIBRDKAFKA_NO_SUCH_THING": "1", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    for command in (["topics", "create"], ["consume", "indexer"], ["lag"]):
        result = run(*command, env=env)
        assert result.returncode == 1, command
        assert result.stderr == (
            "hookstream: HOOKSTREAM_LIBRDKAFKA_NO_SUCH_THING: librdkafka refuses it: "
            'No such configuration property: "no.such.thing"\n'
        )
