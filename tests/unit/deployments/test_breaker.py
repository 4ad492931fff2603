"""Outlier ejection: by failure rate over a window, several half-open probes, backoff, dead."""

from __future__ import annotations

import random

from glmserve.deployments.breaker import CircuitBreaker


def breaker(
    failures: int = 5, cooldown_s: float = 10, max_cooldown_s: float = 60, **kw: float
) -> CircuitBreaker:
    return CircuitBreaker(failures, cooldown_s, max_cooldown_s, **kw)  # type: ignore[arg-type]


def test_a_dead_upstream_is_ejected_after_the_failure_count() -> None:
    b = breaker(failures=3)
    b.failure(0)
    b.failure(0)
    assert b.state == "closed" and b.available(0)
    b.failure(0.5)
    assert b.state == "open" and not b.available(1) and not b.available(10.4)
    assert b.dead and b.ejected.is_set()


def test_a_fifth_of_attempts_failing_never_ejects() -> None:
    b = breaker(failures=5, failure_rate=0.5)
    rng = random.Random(7)
    for i in range(5000):
        now = i * 0.01
        if rng.random() < 0.2:
            b.failure(now)
        else:
            b.success(now)
    assert b.state == "closed" and b.ejections == 0


def test_the_rate_is_judged_over_the_window_only() -> None:
    b = breaker(failures=3, failure_rate=0.5, window_s=10, min_requests=4)
    for _ in range(20):
        b.success(0)
    for t in (1, 2, 3, 4):
        b.failure(t)
    assert b.state == "closed", "4 failures against 20 successes in the window"
    for t in (11, 12, 13):
        b.failure(t)
    assert b.state == "open", "the successes have left the window; 3 failures out of 4 remain"


def test_half_open_lets_several_probes_through_and_the_first_success_closes() -> None:
    b = breaker(failures=1, probes=3)
    b.failure(0)
    assert b.available(10)
    permits = [b.acquire(10) for _ in range(3)]
    assert permits == [True, True, True] and b.state == "half_open"
    assert not b.available(10), "a fourth waits for the probes"
    b.failure(10.1, permit=True)
    assert b.state == "half_open", "one unlucky probe does not decide"
    b.success(10.2, permit=True)
    assert b.state == "closed" and b.available(10.2) and not b.ejected.is_set()


def test_all_probes_failing_reopens_with_a_doubled_capped_ejection() -> None:
    b = breaker(failures=1, cooldown_s=10, max_cooldown_s=25, probes=2)
    b.failure(0)
    for _ in range(2):
        b.acquire(10)
    b.failure(10, permit=True)
    b.failure(10, permit=True)
    assert b.state == "open" and b.open_until == 30
    b.acquire(30)
    b.acquire(30)
    b.failure(30, permit=True)
    b.failure(30, permit=True)
    assert b.open_until == 55, "capped at 25 s"
    b.acquire(55)
    b.success(55, permit=True)
    b.failure(60)
    assert b.open_until == 70, "closing resets the ejection time"


def test_a_released_permit_lets_another_request_probe() -> None:
    b = breaker(failures=1, cooldown_s=1, max_cooldown_s=1, probes=1)
    b.failure(0)
    assert b.acquire(2)
    assert not b.available(2)
    b.release(True)
    assert b.state == "half_open" and b.available(2)


def test_a_passing_probe_ends_the_ejection_and_probes_back_off() -> None:
    b = breaker(failures=1, cooldown_s=30, max_cooldown_s=300, probe_interval_s=0.5)
    b.failure(0)
    assert b.probe_delay() == 0.5 and b.retry_after(0) == 0.5
    b.probe_now(5)
    assert b.available(5)
    b.acquire(5)
    b.failure(5, permit=True)
    b.failure(5)
    b.failure(5)
    assert b.state == "open" and b.probe_delay() == 1.0, "a failed half-open doubles the probe delay"


def test_zero_failures_disables_it() -> None:
    b = breaker(failures=0, cooldown_s=1, max_cooldown_s=1)
    for _ in range(100):
        b.failure(0)
    assert b.state == "closed" and b.available(0) and not b.dead


def test_an_unreachable_upstream_is_ejected_despite_a_window_of_past_successes() -> None:
    b = breaker(failures=3)
    for _ in range(200):
        b.success(0)
    for _ in range(2):
        b.failure(1, unreachable=True)
    b.failure(1)  # an answer that failed breaks the run of unreachable ones
    b.failure(1, unreachable=True)
    b.failure(1, unreachable=True)
    assert b.state == "closed", "200 successes outweigh 5 failures in the rate"
    b.failure(1, unreachable=True)
    assert b.state == "open" and b.dead, "three connection failures in a row eject at once"
