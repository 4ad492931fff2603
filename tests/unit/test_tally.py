"""tally.py: the plain-number metrics expose exactly what prometheus_client's own would.

The same observations go to a ``prometheus_client`` Counter/Histogram/Gauge in one registry and
to the tally metrics in another; the parsed samples must match (``_created`` aside, which the
tally does not keep).
"""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from glmserve.metrics import LATENCY_BUCKETS, Metrics
from glmserve.tally import Tally, TallyCounter, TallyGauge, TallyHistogram


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_the_tally_exposes_what_prometheus_client_does() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    counter = Counter("t_requests", "requests", ["model", "status"], registry=theirs)
    histogram = Histogram("t_seconds", "latency", ["model"], buckets=LATENCY_BUCKETS, registry=theirs)
    gauge = Gauge("t_in_flight", "in flight", registry=theirs)
    t_counter = TallyCounter("t_requests", "requests", ["model", "status"])
    t_histogram = TallyHistogram("t_seconds", "latency", ["model"], LATENCY_BUCKETS)
    t_gauge = TallyGauge("t_in_flight", "in flight")
    ours.register(Tally(t_counter, t_histogram, t_gauge))
    rng = random.Random(7)
    # values on the bucket bounds too: a bound counts in its own bucket (le)
    values = [rng.choice((*LATENCY_BUCKETS, rng.uniform(0, 400))) for _ in range(500)]
    for i, value in enumerate(values):
        model, status = rng.choice(("a", "b", "c")), rng.choice(("200", "429"))
        amount = rng.randint(1, 5)
        counter.labels(model, status).inc(amount)
        t_counter.inc((model, status), amount)
        histogram.labels(model).observe(value)
        t_histogram.observe((model,), value)
        if i % 3:
            gauge.inc()
            t_gauge.inc()
        else:
            gauge.dec()
            t_gauge.dec()
    assert samples(ours) == samples(theirs)
    assert len(samples(ours)) > 30


def test_the_app_metrics_use_the_names_dashboards_know() -> None:
    metrics = Metrics()
    metrics.requests.inc(("glm-4.6", "500", "500"))
    metrics.latency.observe(("glm-4.6",), 0.2)
    metrics.tokens.inc(("glm-4.6", "prompt"), 12)
    metrics.in_flight.inc()
    text = metrics.render()[0].decode()
    assert 'glmserve_requests_total{code="500",model="glm-4.6",status="500"} 1.0' in text
    assert 'glmserve_tokens_total{kind="prompt",model="glm-4.6"} 12.0' in text
    assert 'glmserve_request_duration_seconds_bucket{le="0.25",model="glm-4.6"} 1.0' in text
    assert 'glmserve_request_duration_seconds_bucket{le="0.1",model="glm-4.6"} 0.0' in text
    assert "glmserve_requests_in_flight 1.0" in text
