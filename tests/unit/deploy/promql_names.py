"""Metric names: the ones PromQL expressions use, and the ones the code exports.

Shared by the dashboard and alert-rule tests and by the real-scraping check, so all three
agree on what "a metric the dashboard uses" means.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy/grafana/dashboards/hookstream.json"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
METRIC_MODULES = ("producer.metrics", "consumers.metrics")
# Series Prometheus makes itself for every target; no code exports them.
PROMETHEUS_OWN = frozenset({"up"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_DURATION = re.compile(r"(?<![\w:])(?:\d+(?:ms|[smhdwy]))+(?![\w:])")
_NUMBER = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"\s*label_values\(\s*([^,]+),")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "group_left", "group_right"}
)


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects (function and aggregation names excluded)."""
    text = _STRING.sub(" ", expr)  # before the rest: label values may hold any character
    for pattern in (_MATCHERS, _RANGE, _GROUPING, _DURATION, _NUMBER):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        called = text[match.end() :].lstrip().startswith("(")
        if not called and match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    # Grafana's label_values(<series selector>, <label>): only the selector is PromQL.
    for variable in dashboard["templating"]["list"]:
        found = _LABEL_VALUES.match(variable["query"]["query"]) if variable["type"] == "query" else None
        exprs += [found.group(1)] if found else []
    return exprs


def dashboard_metric_names() -> set[str]:
    return set().union(*(metric_names(e) for e in dashboard_exprs()))


def alert_metric_names() -> set[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return set().union(*(metric_names(r["expr"]) for g in groups for r in g["rules"]))


def exported_metrics() -> dict[str, str]:
    """Name as scraped (counters with `_total`, histograms by base name) -> metric type."""
    exported = {}
    for module_name in METRIC_MODULES:
        module = importlib.import_module(module_name)
        for obj in vars(module).values():
            if not isinstance(obj, MetricWrapperBase):
                continue
            for family in obj.describe():
                name = family.name + "_total" if family.type == "counter" else family.name
                exported[name] = family.type
    return exported


def unexported(used: set[str], exported: dict[str, str]) -> set[str]:
    """The names in `used` that no exported metric produces."""
    missing = set()
    for name in used - PROMETHEUS_OWN:
        base = next((name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if name in exported or (base is not None and exported.get(base) == "histogram"):
            continue
        missing.add(name)
    return missing
