"""Scenario 6: no secret, signature or payload body in any log line the suite captured.

What counts as a leak: any configured secret; any signature value a sender put in a header
(the MAC itself); any request body whole; any payload canary (a random marker each payload
carries in a field no log line has a reason to show).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.faults.harness.webhooks import Webhook


@dataclass(frozen=True)
class Leak:
    source: str
    line_no: int
    kind: str
    line: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line_no}: {self.kind} in {self.line[:200]!r}"


# Shapes of what the suite puts in requests: a payload canary, a hex or base64 HMAC-SHA256.
# Matching shapes first and then looking the match up keeps a scan of thousands of lines
# against thousands of events linear.
_SHAPES = re.compile(r"canary-[0-9a-f]{16}|[0-9a-f]{64}|[A-Za-z0-9+/]{43}=")


def forbidden_strings(secrets: Iterable[str], webhooks: Iterable[Webhook]) -> dict[str, str]:
    """Every string that must never appear in a log, mapped to what it is. A whole body always
    holds its canary, so finding canaries finds bodies too."""
    forbidden = {s: "secret" for s in secrets if s}
    for hook in webhooks:
        forbidden[hook.canary] = "payload"
        for mac in hook.request.macs:
            forbidden[mac] = "signature"
    return forbidden


def secret_file_strings(paths: Iterable[Path]) -> list[str]:
    """What a log must never show of secret files: a password file's password, and each line of
    a PEM private key's body (a leak shows at least one whole line of it)."""
    found = []
    for path in paths:
        text = path.read_text()
        if "PRIVATE KEY-----" not in text:
            found.append(text.strip())
            continue
        found += [line for line in text.splitlines() if line and not line.startswith("-----")]
    return found


def scan_lines(source: str, lines: Iterable[str], forbidden: dict[str, str]) -> list[Leak]:
    secrets = [(s, kind) for s, kind in forbidden.items() if kind == "secret"]
    leaks = []
    for no, line in enumerate(lines, 1):
        kinds = {forbidden[m] for m in _SHAPES.findall(line) if m in forbidden}
        kinds |= {kind for s, kind in secrets if s in line}
        leaks += [Leak(source, no, kind, line) for kind in sorted(kinds)]
    return leaks


def scan_files(files: Iterable[Path], forbidden: dict[str, str]) -> list[Leak]:
    leaks = []
    for path in files:
        if path.exists():
            with path.open(errors="replace") as lines:
                leaks += scan_lines(str(path), lines, forbidden)
    return leaks


class LogEvidence:
    """Everything the session logged, and everything it sent that no log may show."""

    def __init__(self) -> None:
        self.log_dirs: list[Path] = []
        self.files: list[Path] = []
        self.secrets: set[str] = set()
        self.webhooks: list[Webhook] = []

    def watch_dir(self, path: Path) -> None:
        self.log_dirs.append(path)

    def watch_file(self, path: Path) -> None:
        self.files.append(path)

    def sent(self, webhooks: Iterable[Webhook], secrets: Iterable[str] = ()) -> None:
        self.webhooks.extend(webhooks)
        self.secrets.update(secrets)

    def all_files(self) -> list[Path]:
        return [*self.files, *(f for d in self.log_dirs for f in sorted(d.glob("*.log")))]

    def scan(self) -> tuple[list[Path], list[Leak]]:
        files = self.all_files()
        return files, scan_files(files, forbidden_strings(self.secrets, self.webhooks))
