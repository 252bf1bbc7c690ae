"""What the security tests share: running `hookstream` as a role, and reading its one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.secure_kafka import SecureKafka

HOOKSTREAM = str(Path(sys.executable).with_name("hookstream"))
# The developer's own settings must not reach the commands under test.
_FOREIGN_PREFIXES = ("HOOKSTREAM_", "KAFKA_")


def role_env(secure: SecureKafka, role: str, mtls: bool = False, **more: str) -> dict[str, str]:
    """The environment of a process acting as `role`. Give HOOKSTREAM_DATA_DIR to any command
    that keeps state (dlq replay's ledger, a member's stores): the default is ./data."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    return {**base, **secure.env(role, mtls), **more}


def run_as(
    env: dict[str, str], *args: str, log: Path | None = None, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`hookstream <args>` in `env`; its output is appended to `log` (for the log scan)."""
    result = subprocess.run([HOOKSTREAM, *args], env=env, capture_output=True, text=True, timeout=timeout_s)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(
                f"--- hookstream {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"
            )
    return result


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stderr; that line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, f"expected a failure, got 0:\n{result.stdout}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    return lines[0]
