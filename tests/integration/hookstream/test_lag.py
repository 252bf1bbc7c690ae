"""Lag against a real broker: records written with known timestamps, offsets committed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from hookstream.lag import measure
from hookstream.offsets_cli import EXIT_LAG_ABOVE_MAX, lag
from hookstream.settings import Settings
from tests.integration.hookstream.group_helpers import commit, produce, unique_group


def _env(settings: Settings) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "HOOKSTREAM_TOPIC": settings.topic}


def test_lag_per_partition_in_messages_and_seconds(settings: Settings) -> None:
    now = time.time()
    # Partition 0: five records, an hour to a minute old; the group processed the first two.
    produce(settings, 0, [now - 3600, now - 1800, now - 600, now - 120, now - 60])
    # Partition 1: three records, all processed. Partition 2: two records, never reached.
    produce(settings, 1, [now - 50, now - 40, now - 30])
    produce(settings, 2, [now - 900, now - 800])
    group = unique_group("lag")
    commit(settings, group, {0: 2, 1: 3})

    [found] = measure(settings, [group], now=now)

    rows = {p.partition: p for p in found.partitions}
    assert found.group == group
    assert sorted(rows) == [0, 1, 2, 3]  # every partition of the topic, not only committed ones
    assert (rows[0].committed, rows[0].end, rows[0].lag_messages) == (2, 5, 3)
    # The oldest unprocessed record is the one at the committed offset: 600 s old.
    assert rows[0].lag_seconds is not None and abs(rows[0].lag_seconds - 600) < 1
    assert (rows[1].committed, rows[1].end, rows[1].lag_messages, rows[1].lag_seconds) == (3, 3, 0, 0.0)
    assert (rows[2].committed, rows[2].end, rows[2].lag_messages) == (None, 2, 2)
    assert rows[2].lag_seconds is not None and abs(rows[2].lag_seconds - 900) < 1
    assert (rows[3].end, rows[3].lag_messages, rows[3].lag_seconds) == (0, 0, 0.0)
    assert found.total_messages == 5


def test_two_groups_on_one_partition_each_get_their_own_age(settings: Settings) -> None:
    now = time.time()
    produce(settings, 0, [now - 300, now - 200, now - 100])
    behind, ahead = unique_group("behind"), unique_group("ahead")
    commit(settings, behind, {0: 0})
    commit(settings, ahead, {0: 2})

    found = {g.group: g.partitions[0] for g in measure(settings, [behind, ahead], now=now)}

    assert found[behind].lag_messages == 3 and abs((found[behind].lag_seconds or 0) - 300) < 1
    assert found[ahead].lag_messages == 1 and abs((found[ahead].lag_seconds or 0) - 100) < 1


def test_cli_json_and_max_lag_exit_status(settings: Settings) -> None:
    produce(settings, 3, [time.time()] * 4)
    group = unique_group("cli")
    commit(settings, group, {3: 1})
    runner = CliRunner()

    ok = runner.invoke(lag, ["--group", group, "--json", "--max-lag", "3"], env=_env(settings))
    over = runner.invoke(lag, ["--group", group, "--max-lag", "2"], env=_env(settings))

    assert ok.exit_code == 0, ok.output
    [doc] = json.loads(ok.output)
    assert doc["group"] == group and doc["total_lag_messages"] == 3
    assert {p["partition"]: p["lag_messages"] for p in doc["partitions"]}[3] == 3
    assert over.exit_code == EXIT_LAG_ABOVE_MAX
    assert f"group {group} is 3 messages behind (--max-lag 2)" in over.output
    assert group in over.output.splitlines()[1]  # the table came first


def test_unknown_group_is_one_clear_line_and_exit_1(settings: Settings) -> None:
    group = unique_group("never-committed")
    hookstream = Path(sys.executable).with_name("hookstream")
    done = subprocess.run(
        [str(hookstream), "lag", "--group", group],
        env={**os.environ, **_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"hookstream: group(s) {group} have committed no offsets; `hookstream lag` lists every group"
    ]
