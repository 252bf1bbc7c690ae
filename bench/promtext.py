"""Read a process's Prometheus /metrics: counters, and quantiles of a histogram's increase."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

# (sample name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(url: str, timeout_s: float = 5.0) -> Samples:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse(response.read().decode())


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name` over every series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, pairs), value in samples.items() if sample == name and wanted <= set(pairs))


def buckets(samples: Samples, name: str, **labels: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of histogram `name`, summed over matching series."""
    wanted = set(labels.items())
    summed: dict[float, float] = {}
    for (sample, pairs), value in samples.items():
        if sample != f"{name}_bucket" or not wanted <= set(pairs):
            continue
        le = float(dict(pairs)["le"])
        summed[le] = summed.get(le, 0.0) + value
    return sorted(summed.items())


def increase(
    after: list[tuple[float, float]], before: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    earlier: Mapping[float, float] = dict(before)
    return [(le, count - earlier.get(le, 0.0)) for le, count in after]


def quantile(cumulative: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in.

    None when the histogram is empty; the last finite bound when the rank is in +Inf.
    """
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound
