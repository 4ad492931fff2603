"""Prometheus metrics, in a registry of their own per app (never the global default one).

Counters and histograms are updated as requests finish; the engines' and deployments' live
state (in flight, queue depth, upstream failures, breaker state) is read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from glmserve.tally import Tally, TallyCounter, TallyGauge, TallyHistogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class EngineTable(Protocol):
    """What the collector reads from the model router."""

    @property
    def engines(self) -> list[Any]: ...

    def deployment_status(self) -> list[dict[str, Any]]: ...


class _LiveState(Collector):
    def __init__(self) -> None:
        self.table: EngineTable | None = None

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "glmserve_engine_in_flight", "Generations running in an engine", labels=["engine"]
        )
        waiting = GaugeMetricFamily(
            "glmserve_engine_queue_depth", "Requests waiting for an engine slot", labels=["engine"]
        )
        failures = CounterMetricFamily(
            "glmserve_upstream_errors", "Failed attempts per deployment", labels=["model", "deployment"]
        )
        breaker = GaugeMetricFamily(
            "glmserve_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
            labels=["model", "deployment"],
        )
        ejections = CounterMetricFamily(
            "glmserve_deployment_ejections", "Times a deployment was ejected by its breaker",
            labels=["model", "deployment"],
        )  # fmt: skip
        panic = CounterMetricFamily(
            "glmserve_deployment_panic_requests", "Attempts sent to an ejected deployment in panic",
            labels=["model", "deployment"],
        )  # fmt: skip
        retries = CounterMetricFamily(
            "glmserve_upstream_connection_retries",
            "Requests resent on a fresh connection before any response byte, by reason",
            labels=["engine", "reason"],
        )
        if self.table is not None:
            for engine in self.table.engines:
                in_flight.add_metric([engine.name], getattr(engine, "in_flight", 0))
                waiting.add_metric([engine.name], getattr(engine, "waiting", 0))
                connections = getattr(engine, "connections", None)
                for reason, count in getattr(connections, "retried", {}).items():
                    retries.add_metric([engine.name, reason], count)
            for row in self.table.deployment_status():
                labels = [str(row["model"]), str(row["deployment"])]
                failures.add_metric(labels, row["failures"])
                breaker.add_metric(labels, BREAKER_STATES.get(str(row["breaker"]), 0))
                ejections.add_metric(labels, row.get("ejections", 0))
                panic.add_metric(labels, row.get("panic_requests", 0))
        yield from (in_flight, waiting, failures, breaker, ejections, panic, retries)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        # Updated by every request: plain numbers (``tally``), read at scrape time.
        self.requests = TallyCounter(
            "glmserve_requests",
            "Chat requests by model, HTTP status and Zhipu code",
            ["model", "status", "code"],
        )
        self.tokens = TallyCounter(
            "glmserve_tokens",
            "Tokens by model and kind (prompt, completion, reasoning, cached)",
            ["model", "kind"],
        )
        self.ttft = TallyHistogram(
            "glmserve_time_to_first_token_seconds", "Time from admission to the first event",
            ["model"], TTFT_BUCKETS,
        )  # fmt: skip
        self.latency = TallyHistogram(
            "glmserve_request_duration_seconds", "Time from admission to the answer's end",
            ["model"], LATENCY_BUCKETS,
        )  # fmt: skip
        self.in_flight = TallyGauge("glmserve_requests_in_flight", "Chat requests being answered")
        self.http = TallyCounter(
            "glmserve_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
        )
        reg.register(Tally(self.requests, self.tokens, self.ttft, self.latency, self.in_flight, self.http))
        self.usage_write_errors = Counter(
            "glmserve_usage_write_errors", "Usage batches the database refused", registry=reg
        )
        self._live = _LiveState()
        reg.register(self._live)

    def watch(self, table: EngineTable | None) -> None:
        """Read engine and deployment state from ``table`` at each scrape (None: stop)."""
        self._live.table = table

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
