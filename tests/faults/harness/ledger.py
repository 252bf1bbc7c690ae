"""The ledger: per scenario, what was sent, what was promised (2xx), and where it ended up.

An event answered 2xx is *lost* when Kafka does not hold it, or when some group neither
holds its effect nor dead-lettered it. Any event the suite sent (2xx or not: a 503'd record
may land after all) is *duplicated* when some group holds its effect more than once. Both
must be 0. Rows are appended to `build/faults/ledger.jsonl` (one run after another, so a run
can be compared with the last) and printed as a table.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LEDGER_FILE = Path(__file__).resolve().parents[3] / "build" / "faults" / "ledger.jsonl"


@dataclass(frozen=True)
class LedgerRow:
    scenario: str
    sent: int
    answered_2xx: int
    in_kafka: int
    processed: dict[str, int]
    in_dlq: int
    lost: int
    duplicated: int
    # Notifications repeated under one Idempotency-Key: a member killed between a destination's 2xx
    # and its record of it (the documented window), bounded by the requests in flight at each kill.
    crash_window: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0


@dataclass(frozen=True)
class Reckoning:
    """The ledger row plus the ids behind its numbers, for an assertion message that helps."""

    row: LedgerRow
    lost_ids: dict[str, list[str]]
    duplicated_ids: dict[str, list[str]]

    def explain(self) -> str:
        parts = [f"{where}: {len(ids)} e.g. {ids[:3]}" for where, ids in self.lost_ids.items() if ids]
        parts += [f"dup in {g}: {len(ids)} e.g. {ids[:3]}" for g, ids in self.duplicated_ids.items() if ids]
        return "; ".join(parts) or "nothing lost or duplicated"


def reckon(
    scenario: str,
    sent: set[str],
    accepted: set[str],
    in_kafka: Counter[str],
    effects: Mapping[str, Counter[str]],
    dead_lettered: Mapping[str, set[str]] | None = None,
    dlq_records: int = 0,
    notes: dict[str, Any] | None = None,
    crash_window: int = 0,
) -> Reckoning:
    """`effects[group]` counts each event id's effects in that group's sink; `dead_lettered[group]`
    are the ids the group sent to the DLQ instead (accounted for, not lost)."""
    dead_lettered = dead_lettered or {}
    lost_ids = {"kafka": sorted(accepted - set(in_kafka))}
    duplicated_ids = {}
    for group, counts in effects.items():
        lost_ids[group] = sorted(accepted - set(counts) - dead_lettered.get(group, set()))
        duplicated_ids[group] = sorted(e for e, n in counts.items() if n > 1)
    dlq_instead = {g: len(accepted & dead_lettered.get(g, set()) - set(c)) for g, c in effects.items()}
    lost = set().union(*lost_ids.values())
    duplicated = set().union(*duplicated_ids.values()) if duplicated_ids else set()
    row = LedgerRow(
        scenario=scenario,
        sent=len(sent),
        answered_2xx=len(accepted),
        in_kafka=len(accepted & set(in_kafka)),
        processed={g: len(accepted & set(c)) for g, c in effects.items()},
        in_dlq=dlq_records,
        lost=len(lost),
        duplicated=len(duplicated),
        crash_window=crash_window,
        notes={"dead_lettered_instead": dlq_instead, **(notes or {})},
    )
    return Reckoning(row, lost_ids, duplicated_ids)


def _git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


class Ledger:
    def __init__(self, path: Path = LEDGER_FILE) -> None:
        self.path = path
        self.rows: list[LedgerRow] = []
        self.run_id = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.previous = self._last_run()

    def _last_run(self) -> dict[str, dict[str, Any]]:
        """The latest earlier row of each scenario, to compare this run with."""
        latest: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    latest[entry["scenario"]] = entry
        return latest

    def record(self, row: LedgerRow) -> None:
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"run": self.run_id, "commit": _git_commit(), **asdict(row)}
        with self.path.open("a") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    def table(self) -> str:
        return format_table(self.rows, self.previous)


COLUMNS = (
    "scenario", "sent", "2xx", "in kafka", "indexer", "notifier", "archiver", "in dlq", "lost", "dup",
    "crash window",
)  # fmt: skip


def format_table(rows: list[LedgerRow], previous: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    previous = previous or {}
    lines = []
    for row in rows:
        cells = [
            row.scenario,
            row.sent,
            row.answered_2xx,
            row.in_kafka,
            *(row.processed.get(g, "-") for g in ("indexer", "notifier", "archiver")),
            row.in_dlq,
            row.lost,
            row.duplicated,
            row.crash_window,
        ]
        line = [str(c) for c in cells]
        last = previous.get(row.scenario)
        if last is not None:
            line.append(
                f"(last run: 2xx {last['answered_2xx']}, lost {last['lost']}, dup {last['duplicated']})"
            )
        lines.append(line)
    header = list(COLUMNS)
    widths = [max(len(r[i]) for r in [header, *lines] if i < len(r)) for i in range(len(header))]
    render = [
        "  ".join(cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(r))
        for r in [header, *lines]
    ]
    return "\n".join(render)
