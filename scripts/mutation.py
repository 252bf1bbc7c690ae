"""`make mutation`: mutmut over the pure-logic modules, each against its own fast unit tests.

mutmut 2 rewrites source files in place, so it works on a copy of the working tree in a
temporary folder: the shared tree, and any test run in it, never sees a mutant. It prints
every surviving mutant (an assertion missing, or a line not needed), then the score per module.

    .venv/bin/python scripts/mutation.py                 # every target (20-40 minutes on 2 cores)
    .venv/bin/python scripts/mutation.py consumers/retry.py  # the targets whose paths start so
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = str(Path(sys.executable).with_name("mutmut"))


@dataclass(frozen=True)
class Target:
    paths: tuple[str, ...]  # what mutmut mutates
    tests: tuple[str, ...]  # the fast unit tests that must kill every mutant


PROVIDER_TESTS = ("tests/unit/producer/test_signatures.py", "tests/unit/producer/test_parsing.py")
TARGETS = (
    *(
        Target((f"producer/providers/{name}.py",), PROVIDER_TESTS)
        for name in ("fastio", "github", "stripe", "standard", "base", "__init__")
    ),
    Target(
        ("consumers/retry.py", "consumers/breaker.py"), ("tests/unit/consumers/test_retry_and_breaker.py",)
    ),
    Target(
        ("hookstream/settings.py",),
        ("tests/unit/hookstream/test_settings.py", "tests/unit/hookstream/test_kafka_config.py"),
    ),
    Target(("schemas/codec.py",), ("tests/unit/schemas/test_codec.py", "tests/unit/schemas/test_compat.py")),
    Target(("consumers/index/events.py",), ("tests/unit/consumers/test_indexer_mapping.py",)),
)
KILLED = {"ok_killed", "ok_suspicious"}  # suspicious: the tests failed by running far too long


def copy_tree(into: Path) -> None:
    """The working tree as it is (committed or not), without what git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def run_target(target: Target, work: Path) -> dict[str, Counter[str]]:
    """Mutate TARGET in its own copy; return each file's mutant statuses."""
    present = [path for path in target.paths if (ROOT / path).exists()]
    if not present:
        print(f"-- {', '.join(target.paths)}: not in the tree, skipped", flush=True)
        return {}
    tree = work / str(len(list(work.iterdir())))
    tree.mkdir()
    copy_tree(tree)
    # No conftest and no auto-loaded plugins (schemathesis, testcontainers ...): these unit tests
    # need no server, and those imports cost seven times the tests themselves on every run.
    runner = (
        f"env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -x -q -p no:cacheprovider"
        f" -W ignore::pytest.PytestConfigWarning --noconftest {' '.join(target.tests)}"
    )
    print(f"-- mutating {', '.join(present)} against {' '.join(target.tests)}", flush=True)
    subprocess.run(
        [
            MUTMUT,
            "run",
            f"--paths-to-mutate={','.join(present)}",
            f"--runner={runner}",
            "--tests-dir=tests",
            "--test-time-base=15",  # two shared cores: a slow run is not a killed mutant
            "--no-progress",
            "--simple-output",
        ],
        cwd=tree,
        check=False,  # mutmut exits non-zero when a mutant survives: the report says so
    )
    with sqlite3.connect(tree / ".mutmut-cache") as cache:
        rows = cache.execute(
            "SELECT SourceFile.filename, Mutant.id, Mutant.status FROM Mutant "
            "JOIN Line ON Mutant.line = Line.id JOIN SourceFile ON Line.sourcefile = SourceFile.id"
        ).fetchall()
    statuses: dict[str, Counter[str]] = {}
    for filename, mutant_id, status in rows:
        statuses.setdefault(filename, Counter())[status] += 1
        if status not in KILLED:
            shown = subprocess.run(
                [MUTMUT, "show", str(mutant_id)],
                cwd=tree,
                capture_output=True,
                text=True,
            ).stdout
            print(f"-- survived ({status}):\n{shown}", flush=True)
    return statuses


def main(prefixes: list[str]) -> int:
    chosen = [t for t in TARGETS if not prefixes or any(p.startswith(tuple(prefixes)) for p in t.paths)]
    scores: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="hookstream-mutation-") as work:
        for target in chosen:
            scores.update(run_target(target, Path(work)))
    print(f"\n{'module':40} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>6}")
    for filename, counts in sorted(scores.items()):
        total = sum(counts.values())
        killed = sum(counts[status] for status in KILLED)
        print(f"{filename:40} {total:8} {killed:7} {total - killed:9} {killed / total:6.0%}")
    return 0 if all(sum(c[s] for s in KILLED) == sum(c.values()) for c in scores.values()) else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
