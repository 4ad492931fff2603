"""The retry budget bounds retries to a share of recent requests, and the backoff is jittered.

One rule, the README's: a window of ``window_s`` may hold ``max(minimum, floor(ratio * requests))``
retries (``allowance`` below). Every test here, and the chain's outage test, pins that sum.
"""

from __future__ import annotations

import math

import pytest

from glmserve.deployments.budget import RetryBudget, backoff


def allowance(ratio: float, minimum: int, requests: int) -> int:
    """Retries a window with ``requests`` requests allows: the ratio, or the minimum if that is more."""
    return max(minimum, math.floor(ratio * requests))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_minimum_is_a_floor_under_the_ratio() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, minimum=2, window_s=10, clock=clock)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    for _ in range(5):
        budget.record_request()
    assert budget.allowed() == allowance(0.2, 2, 5) == 2, "1 by the ratio, 2 by the floor"
    for _ in range(15):
        budget.record_request()
    assert budget.allowed() == allowance(0.2, 2, 20) == 4
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    assert budget.retries == 4


def test_window_slides() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.5, minimum=0, window_s=10, clock=clock)
    for _ in range(10):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(10)) == 5
    clock.now += 5
    assert not budget.try_spend()
    clock.now += 6
    assert not budget.try_spend(), "no recent requests, no minimum: nothing"
    assert budget.requests == 0 and budget.retries == 0


def test_full_outage_never_exceeds_the_budget() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.1, minimum=3, window_s=10, clock=clock)
    spent = 0
    for _ in range(500):  # 50 requests a second, each wanting 2 retries
        budget.record_request()
        spent += sum(budget.try_spend() for _ in range(2))
        clock.now += 0.02
        assert budget.retries == min(2 * budget.requests, allowance(0.1, 3, budget.requests))
    assert spent == allowance(0.1, 3, 500) == 50, "10% of the requests, the floor long passed"


@pytest.mark.parametrize("round_", [0, 1, 2, 5, 10])
def test_backoff_is_capped_and_jittered(round_: int) -> None:
    low = backoff(round_, 0.25, 4.0, 0.0)
    high = backoff(round_, 0.25, 4.0, 0.999999)
    ceiling = min(4.0, 0.25 * 2**round_)
    assert low == pytest.approx(ceiling / 2)
    assert high == pytest.approx(ceiling, rel=1e-5)
