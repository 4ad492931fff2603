"""The circuit breaker: opens after consecutive failures, lets one probe through, recovers."""

from __future__ import annotations

from glmserve.deployments.breaker import CircuitBreaker


def test_opens_after_consecutive_failures_only() -> None:
    b = CircuitBreaker(failures=3, cooldown_s=10, max_cooldown_s=60)
    b.failure(0)
    b.failure(0)
    b.success()
    b.failure(0)
    b.failure(0)
    assert b.state == "closed" and b.available(0)
    b.failure(1)
    assert b.state == "open" and not b.available(1) and not b.available(10.9)


def test_half_open_allows_exactly_one_probe_then_closes_on_success() -> None:
    b = CircuitBreaker(failures=1, cooldown_s=10, max_cooldown_s=60)
    b.failure(0)
    assert b.available(10)
    b.acquire(10)
    assert b.state == "half_open" and not b.available(10), "a second request waits for the probe"
    b.success()
    assert b.state == "closed" and b.available(10)


def test_failed_probe_reopens_with_a_doubled_capped_cooldown() -> None:
    b = CircuitBreaker(failures=1, cooldown_s=10, max_cooldown_s=25)
    b.failure(0)
    b.acquire(10)
    b.failure(10)
    assert b.state == "open" and b.open_until == 30
    b.acquire(30)
    b.failure(30)
    assert b.open_until == 55, "capped at 25 s"
    b.acquire(55)
    b.success()
    b.failure(60)
    assert b.open_until == 70, "success resets the cooldown"


def test_released_probe_lets_another_request_probe() -> None:
    b = CircuitBreaker(failures=1, cooldown_s=1, max_cooldown_s=1)
    b.failure(0)
    b.acquire(2)
    b.release()
    assert b.state == "half_open" and b.available(2)


def test_health_check_success_shortens_the_cooldown() -> None:
    b = CircuitBreaker(failures=1, cooldown_s=30, max_cooldown_s=30)
    b.failure(0)
    b.probe_now(5)
    assert b.available(5)


def test_zero_failures_disables_it() -> None:
    b = CircuitBreaker(failures=0, cooldown_s=1, max_cooldown_s=1)
    for _ in range(100):
        b.failure(0)
    assert b.state == "closed" and b.available(0)
