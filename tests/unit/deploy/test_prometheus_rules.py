"""Alert rules and scrape config through promtool (Debian's `prometheus` package ships it).

Without promtool these tests skip on a developer's machine but fail under CI=true: `.ci/run`
installs it, so a missing promtool there is a broken setup, not a reason to pass.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.unit.deploy.promql_names import ALERTS, ROOT
from tests.unit.deploy.tools import debian_tool

PROMETHEUS_DIR = ROOT / "deploy/prometheus"
RUNBOOK = ROOT / "docs/runbook.md"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [debian_tool("promtool"), *map(str, args)]
    return subprocess.run(command, cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)


def _alerts() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", ALERTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in done.stdout


def test_rules_pass_their_unit_tests() -> None:
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_unit_tests_would_catch_a_broken_rule(tmp_path: Path) -> None:
    # The same tests against rules whose lag threshold was edited by mistake must fail.
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text().replace(") > 10000", ") > 100000"))
    shutil.copy(PROMETHEUS_DIR / "alerts_test.yml", tmp_path)
    done = promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert done.returncode != 0
    assert "HookstreamConsumerLagHigh" in done.stdout + done.stderr


def test_scrape_config_passes_promtool_check() -> None:
    # --syntax-only: the rule file path is where the compose stack mounts it, not in the repo.
    done = promtool("check", "config", "--syntax-only", PROMETHEUS_DIR / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook_section() -> None:
    tested = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    tested_names = {case["alertname"] for test in tested for case in test.get("alert_rule_test", [])}
    anchors = {
        "#" + re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in _alerts():
        name = str(rule["alert"])
        assert name in tested_names, f"{name} has no promtool unit test"
        labels, annotations = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in {"warning", "critical"}
        assert isinstance(annotations, dict) and {"summary", "description"} <= annotations.keys()
        link = str(annotations["runbook_url"])
        assert link == f"docs/runbook.md#{name.lower()}", name
        assert link.removeprefix("docs/runbook.md") in anchors, f"docs/runbook.md has no section {name}"


def test_scrape_jobs_match_the_rules_and_the_compose_services() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    down_rule = next(r for r in _alerts() if r["alert"] == "HookstreamTargetDown")
    assert set(re.findall(r"hookstream-[a-z]+", str(down_rule["expr"]))) <= jobs.keys()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for job in ("hookstream-producer", "hookstream-consumers"):
        for name in jobs[job]["dns_sd_configs"][0]["names"]:  # every replica of these services
            assert name in services, name
