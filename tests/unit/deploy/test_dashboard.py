"""The Grafana dashboard can't rot: every metric a panel queries is one the code exports."""

from __future__ import annotations

import json

import yaml

from tests.unit.deploy.promql_names import (
    DASHBOARD,
    ROOT,
    alert_metric_names,
    dashboard_exprs,
    dashboard_metric_names,
    exported_metrics,
    metric_names,
    unexported,
)


def test_metric_names_ignores_functions_labels_ranges_and_numbers() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (group, le) (rate(a_seconds_bucket{group=~"$group",x="b_c"}[5m])))'
        " / on (group) group_left sum(b_total offset 1h) > bool 1e3 and time() - c_gauge"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_gauge"}


def test_unexported_knows_counter_and_histogram_names() -> None:
    exported = {"x_total": "counter", "h_seconds": "histogram", "g": "gauge"}
    used = {"x_total", "h_seconds_bucket", "h_seconds_count", "g", "up"}
    assert unexported(used, exported) == set()
    # A counter without _total, a gauge with a histogram suffix, an unknown name: all caught.
    assert unexported({"x", "g_bucket", "nope"}, exported) == {"x", "g_bucket", "nope"}


def test_every_dashboard_metric_is_exported_by_the_code() -> None:
    used = dashboard_metric_names()
    assert len(used) >= 15, used  # the extractor found the panels' metrics at all
    assert unexported(used, exported_metrics()) == set()


def test_every_alert_rule_metric_is_exported_by_the_code() -> None:
    assert unexported(alert_metric_names(), exported_metrics()) == set()


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = dashboard_metric_names()
    shown = {n.removesuffix("_bucket") for n in used}
    assert set(exported_metrics()) - shown == set()


def test_panels_cover_what_operators_need() -> None:
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert {
        "Ingest rate by provider and status",
        "Request latency",
        "Kafka delivery latency and failures",
        "Rejections by reason",
        "Lag per partition (messages)",
        "Lag per partition (seconds)",
        "Processing rate",
        "Retries and DLQ rate",
        "Rebalances",
        "End-to-end latency",
    } <= titles


def test_dashboard_is_well_formed_for_provisioning() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
    assert all(e.count("(") == e.count(")") for e in dashboard_exprs())
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/hookstream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
