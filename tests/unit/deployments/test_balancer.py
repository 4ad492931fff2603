"""Priority tiers, then weighted least-in-flight with smooth round-robin ties."""

from __future__ import annotations

import random
from collections import Counter

from glmserve.deployments.balancer import pick
from glmserve.deployments.balancer import select as select_panic
from glmserve.deployments.breaker import CircuitBreaker
from glmserve.deployments.member import Member


def select(tiers: list[list[Member]], now: float, exclude: set[Member]) -> Member | None:
    chosen, panic = select_panic(tiers, now, exclude)
    assert not panic, "no panic threshold, no panic"
    return chosen


def member(label: str, weight: float = 1.0, priority: int = 0, max_concurrency: int | None = None) -> Member:
    breaker = CircuitBreaker(1, 10, 10)
    return Member(label, "openai", None, breaker, weight, priority, max_concurrency)  # type: ignore[arg-type]


def test_sequential_traffic_splits_exactly_by_weight() -> None:
    a, b, c = member("a", 3), member("b", 1), member("c", 2)
    counts = Counter(pick([a, b, c]).label for _ in range(600))  # type: ignore[union-attr]
    assert counts == {"a": 300, "b": 100, "c": 200}


def test_smooth_round_robin_interleaves() -> None:
    a, b = member("a", 2), member("b", 1)
    assert [pick([a, b]).label for _ in range(6)] == ["a", "b", "a", "a", "b", "a"]  # type: ignore[union-attr]


def test_least_in_flight_per_weight_wins() -> None:
    a, b = member("a", 3), member("b", 1)
    a.in_flight, b.in_flight = 2, 1
    assert pick([a, b]) is a  # 2/3 < 1/1
    a.in_flight = 4
    assert pick([a, b]) is b


def test_concurrent_load_spreads_by_weight() -> None:
    a, b = member("a", 3), member("b", 1)
    rng = random.Random(7)
    running: list[Member] = []
    counts: Counter[str] = Counter()
    for _ in range(4000):
        if running and (len(running) >= 16 or rng.random() < 0.5):
            done = running.pop(rng.randrange(len(running)))
            done.in_flight -= 1
        chosen = pick([a, b])
        assert chosen is not None
        chosen.in_flight += 1
        running.append(chosen)
        counts[chosen.label] += 1
    share = counts["a"] / (counts["a"] + counts["b"])
    assert 0.68 < share < 0.82, counts


def test_lower_priority_is_a_fallback_only() -> None:
    main, spare = member("main"), member("spare", priority=1)
    tiers = [[main], [spare]]
    assert select(tiers, 0, set()) is main
    assert select(tiers, 0, {main}) is spare
    main.breaker.failure(0)
    assert select(tiers, 1, set()) is spare, "an open breaker skips the tier"
    main.cooldown_until = 0
    assert select(tiers, 11, set()) is main, "after the cooldown the probe goes to main"


def test_unhealthy_only_when_nothing_healthy_is_left() -> None:
    a, b = member("a"), member("b", priority=1)
    a.healthy = False
    assert select([[a], [b]], 0, set()) is b
    b.healthy = False
    assert select([[a], [b]], 0, set()) is a


def test_cooling_and_saturated_members_are_skipped() -> None:
    a, b = member("a", max_concurrency=1), member("b")
    a.in_flight = 1
    assert select([[a, b]], 0, set()) is b
    b.cooldown_until = 5
    assert select([[a, b]], 0, set()) is None
    assert select([[a, b]], 5, set()) is b
