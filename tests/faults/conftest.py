"""Fault-injection fixtures: a three-node Kafka cluster for the session, the ledger, and a
pipeline of real processes per scenario.

`make test` runs only the scenarios also marked `faults_smoke` (quick ones); `make test-faults`
(`pytest -m faults tests/faults`) runs every scenario. Any explicit `-m` is respected as given.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hookstream.admin import TopicSpec, admin_client, ensure_topics
from hookstream.settings import Settings
from hookstream_dev.kafka import LocalCluster
from hookstream_dev.process import free_port_block
from tests.faults.harness.kafka_reader import wait_in_sync
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.webhooks import SigningKeys

PARTITIONS = 6
# Each scenario's processes keep their logs and data here until the next session, for a post-mortem.
WORK_DIR = Path(__file__).resolve().parents[2] / "build" / "faults" / "work"
_LEDGER = pytest.StashKey[Ledger]()
_EVIDENCE = pytest.StashKey[LogEvidence]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults_smoke: a quick fault scenario that also runs in `make test`")
    config.stash[_LEDGER] = Ledger()
    config.stash[_EVIDENCE] = LogEvidence()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Scenario 6 scans every log the session captured: it runs after the others.
    items.sort(key=lambda item: item.path.name == "test_log_hygiene.py")
    if config.option.markexpr:
        return  # the caller chose what to run
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        slow = item.get_closest_marker("faults") and not item.get_closest_marker("faults_smoke")
        (drop if slow else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    ledger = config.stash.get(_LEDGER, None)
    if ledger is None or not ledger.rows:
        return
    terminalreporter.section("fault ledger")
    terminalreporter.write_line(ledger.table())
    terminalreporter.write_line(f"(appended to {ledger.path})")


@pytest.fixture(scope="session")
def work_dir() -> Path:
    """This session's folder under WORK_DIR, named by its pid. Folders of sessions no longer
    running are removed; a session running beside this one (another `make test`) keeps its own."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    for old in WORK_DIR.glob("session-*"):
        if not Path(f"/proc/{old.name.removeprefix('session-')}").exists():
            shutil.rmtree(old, ignore_errors=True)
    mine = WORK_DIR / f"session-{os.getpid()}"
    mine.mkdir(exist_ok=True)
    return mine


@pytest.fixture(scope="session")
def ledger(pytestconfig: pytest.Config) -> Ledger:
    return pytestconfig.stash[_LEDGER]


@pytest.fixture(scope="session")
def evidence(pytestconfig: pytest.Config) -> LogEvidence:
    """Every log the session captured and everything it sent, for scenario 6."""
    return pytestconfig.stash[_EVIDENCE]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three combined broker+controller nodes; scenarios kill and restart them."""
    local = LocalCluster(
        tmp_path_factory.mktemp("kafka3"), nodes=3, base_port=free_port_block(6), heap_mb=384
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def healthy_cluster(cluster: LocalCluster) -> LocalCluster:
    """The cluster with every node up, whatever an earlier scenario left behind."""
    cluster.start()
    return cluster


def new_topics(cluster: LocalCluster) -> tuple[str, str]:
    """An events and a DLQ topic of their own: replication factor 3, min.insync.replicas 2."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"faults-events-{suffix}", f"faults-dlq-{suffix}")
    settings = Settings(kafka_bootstrap_servers=cluster.bootstrap_servers)
    ensure_topics(admin_client(settings), [TopicSpec(n, PARTITIONS, 3) for n in names])
    wait_in_sync(cluster.bootstrap_servers, list(names))
    return names


@pytest.fixture
def topics(healthy_cluster: LocalCluster) -> tuple[str, str]:
    return new_topics(healthy_cluster)


@pytest.fixture
def keys() -> SigningKeys:
    return SigningKeys.generate()


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


PipelineFactory = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(
    healthy_cluster: LocalCluster,
    topics: tuple[str, str],
    keys: SigningKeys,
    receiver: NotificationReceiver,
    evidence: LogEvidence,
    work_dir: Path,
    request: pytest.FixtureRequest,
) -> Iterator[PipelineFactory]:
    """Builds this test's pipeline (processes are started by the test); stops it afterwards."""
    built: list[Pipeline] = []

    def build(**extra_env: str) -> Pipeline:
        env = {
            # Each test's groups are its own, and a SIGKILLed member's partitions move on soon.
            "HOOKSTREAM_CONSUMER_GROUP_PREFIX": f"faults-{uuid.uuid4().hex[:6]}-",
            "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": "10000",
            **extra_env,
        }
        pipeline = Pipeline(
            work_dir / f"{request.node.name}-{len(built)}",
            healthy_cluster.bootstrap_servers,
            topics[0],
            topics[1],
            keys,
            notify_url=receiver.url,
            extra_env=env,
        )
        built.append(pipeline)
        evidence.watch_dir(pipeline.log_dir)
        evidence.sent([], keys.all())
        return pipeline

    yield build
    for pipeline in built:
        pipeline.stop()
