"""Read a server's ``GET /metrics`` into numbers, so a test can check that a counter moved."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(root: str, key: str | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``root``/metrics: ``(sample name, labels) -> value``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{root}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; 0 when absent (a labelled counter not yet used)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
