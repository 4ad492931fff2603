"""The deployment chain: fallback before the first event, in-band failure after it, retries under
the budget, Retry-After, breakers. Engines are scripted fakes; time is a fake clock."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from glmserve.config.deployments import RetryPolicy
from glmserve.deployments.breaker import CircuitBreaker
from glmserve.deployments.chain import TIMER_SLACK_S, DeploymentChain
from glmserve.deployments.member import Member
from glmserve.engines.base import Event, Finish, Generation, Sampling, Text, Usage
from glmserve.errors import (
    ContextLengthExceeded,
    GlmError,
    RateLimited,
    Unavailable,
    UpstreamError,
)

OK = [Text("hi"), Finish("stop"), Usage(1, 1)]


def answered_by(label: str) -> list[Event]:
    """``OK`` as the chain passes it on: its ``Usage`` names the deployment that answered."""
    return [Text("hi"), Finish("stop"), Usage(1, 1, served_by=label)]


class Scripted:
    """Each call to ``stream`` takes the next step: "ok", "mid" (fails after one event) or an error."""

    def __init__(self, name: str, steps: list[Any] | None = None, default: Any = "ok"):
        self.name = name
        self.steps = list(steps or [])
        self.default = default
        self.calls = 0
        self.closed = 0

    async def _run(self, step: Any) -> AsyncIterator[Event]:
        try:
            if isinstance(step, GlmError):
                raise step
            yield Text("hi")
            if step == "mid":
                raise UpstreamError("broke off")
            for event in OK[1:]:
                yield event
        finally:
            self.closed += 1

    def stream(self, generation: Generation) -> AsyncIterator[Event]:
        self.calls += 1
        return self._run(self.steps.pop(0) if self.steps else self.default)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def chain(
    engines: list[Scripted], policy: RetryPolicy | None = None, **member_kw: Any
) -> tuple[DeploymentChain, Clock]:
    clock = Clock()
    members = []
    for i, engine in enumerate(engines):
        kw = {k: v[i] for k, v in member_kw.items()}
        breaker = CircuitBreaker(kw.pop("failures", 3), 10, 60)
        members.append(Member(engine.name, "openai", engine, breaker, **kw))
    policy = policy or RetryPolicy(backoff_s=0.1, backoff_max_s=1)
    return DeploymentChain("m", members, policy, clock=clock, sleep=clock.sleep, rand=lambda: 0.5), clock


GEN = Generation(messages=[{"role": "user", "content": "x"}], sampling=Sampling(0, 1))


def collect(c: DeploymentChain) -> list[Event]:
    async def run() -> list[Event]:
        return [e async for e in c.stream(GEN)]

    return asyncio.run(run())


def test_fallback_to_the_next_deployment_before_the_first_event() -> None:
    a, b = Scripted("a", [UpstreamError("refused")]), Scripted("b")
    c, clock = chain([a, b])
    assert collect(c) == answered_by("b")
    assert (a.calls, b.calls) == (1, 1) and clock.slept == [], "a fallback does not wait"
    assert [m.in_flight for m in c.members] == [0, 0]


def test_priority_fallback_only_when_the_first_tier_fails() -> None:
    a, b = Scripted("a"), Scripted("b")
    c, _ = chain([a, b], priority=[0, 1])
    for _ in range(3):
        collect(c)
    assert (a.calls, b.calls) == (3, 0)


def test_request_faults_are_not_retried() -> None:
    a, b = Scripted("a", [ContextLengthExceeded("too long")]), Scripted("b")
    c, _ = chain([a, b])
    with pytest.raises(ContextLengthExceeded):
        collect(c)
    assert b.calls == 0 and c.members[0].breaker.consecutive == 0


def test_retry_rounds_with_backoff_then_success() -> None:
    a = Scripted("a", [UpstreamError("x"), UpstreamError("y")])
    c, clock = chain([a])
    assert collect(c) == answered_by("a")
    assert a.calls == 3 and clock.slept == [pytest.approx(0.075), pytest.approx(0.15)]


def test_retries_stop_after_policy_rounds() -> None:
    a = Scripted("a", default=UpstreamError("down"))
    c, _ = chain([a], failures=[0])
    with pytest.raises(UpstreamError):
        collect(c)
    assert a.calls == 3


def test_permanent_failures_are_not_retried() -> None:
    a = Scripted("a", default=UpstreamError("bad key", permanent=True))
    c, clock = chain([a])
    with pytest.raises(UpstreamError):
        collect(c)
    assert a.calls == 1 and clock.slept == []


def test_retry_after_is_waited_out_when_short() -> None:
    a = Scripted("a", [RateLimited("slow down", retry_after=2)])
    c, clock = chain([a])
    assert collect(c) == answered_by("a")
    assert clock.slept == [2.0 + TIMER_SLACK_S] and a.calls == 2
    assert c.members[0].breaker.consecutive == 0, "a 429 is not a breaker failure"


def test_retry_after_is_waited_out_on_a_coarse_timer() -> None:
    """uvloop's timers tick in cached milliseconds: a sleep may end 1 ms early, a shorter one at once."""
    a = Scripted("a", [RateLimited("slow down", retry_after=1)])
    c, clock = chain([a])

    async def coarse_sleep(seconds: float) -> None:
        clock.slept.append(seconds)
        clock.now += 0.0 if seconds < 0.001 else seconds - 0.001

    c._sleep = coarse_sleep
    assert collect(c) == answered_by("a")
    assert a.calls == 2


def test_long_retry_after_goes_back_to_the_client() -> None:
    a = Scripted("a", [RateLimited("slow down", retry_after=30)])
    c, clock = chain([a])
    with pytest.raises(RateLimited) as caught:
        collect(c)
    assert caught.value.retry_after == 30 and clock.slept == []
    with pytest.raises(RateLimited) as again:
        collect(c)
    assert a.calls == 1, "the cooling deployment gets no request"
    assert 1 <= (again.value.retry_after or 0) <= 30


def test_mid_stream_failure_is_network_error_and_not_retried() -> None:
    a, b = Scripted("a", ["mid"]), Scripted("b")
    c, _ = chain([a, b])

    async def run() -> list[Event]:
        seen: list[Event] = []
        with pytest.raises(UpstreamError):
            async for event in c.stream(GEN):
                seen.append(event)
        return seen

    assert asyncio.run(run()) == [Text("hi"), Finish("network_error")]
    assert b.calls == 0 and a.closed == 1
    assert c.members[0].counts["failures"] == 1


def test_closing_early_frees_the_deployment() -> None:
    a = Scripted("a")
    c, _ = chain([a])

    async def run() -> None:
        stream = c.stream(GEN)
        assert await anext(stream) == Text("hi")
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(run())
    assert a.closed == 1 and c.members[0].in_flight == 0 and c.members[0].counts["failures"] == 0


def test_breaker_opens_then_recovers_through_one_probe() -> None:
    a = Scripted("a", default=UpstreamError("down"))
    c, clock = chain([a], RetryPolicy(retries=0), failures=[2])
    for _ in range(2):
        with pytest.raises(UpstreamError):
            collect(c)
    with pytest.raises(Unavailable) as caught:
        collect(c)
    assert a.calls == 2 and caught.value.retry_after == 1, "the on-demand probe checks every 0.5 s"
    clock.now += 10
    a.default = "ok"
    assert collect(c) == answered_by("a")
    assert c.members[0].breaker.state == "closed"


def test_full_outage_retries_stay_within_the_budget() -> None:
    a, b = Scripted("a", default=UpstreamError("down")), Scripted("b", default=UpstreamError("down"))
    policy = RetryPolicy(retries=3, budget_ratio=0.1, budget_min=2, backoff_s=0)
    c, _ = chain([a, b], policy, failures=[0, 0])
    for _ in range(100):
        with pytest.raises(UpstreamError):
            collect(c)
    rounds_retried = (a.calls + b.calls - 2 * 100) // 2
    # The README's rule, as in test_retry_budget: budget_ratio of the requests, budget_min the floor.
    assert rounds_retried == max(2, math.floor(0.1 * 100)) == 10
    assert a.calls + b.calls == 2 * (100 + 10)


def test_all_saturated_is_429() -> None:
    a = Scripted("a")
    c, _ = chain([a], max_concurrency=[1])
    c.members[0].in_flight = 1
    with pytest.raises(RateLimited):
        collect(c)


def test_balancing_by_weight() -> None:
    a, b = Scripted("a"), Scripted("b")
    c, _ = chain([a, b], weight=[3.0, 1.0])
    for _ in range(40):
        collect(c)
    assert (a.calls, b.calls) == (30, 10)


def test_a_partly_failing_only_deployment_is_ejected_but_still_served_in_panic() -> None:
    steps: list[Any] = [UpstreamError("flaky"), "ok"] * 100  # half of them fail, never two in a row
    a = Scripted("a", steps)
    c, clock = chain([a], RetryPolicy(retries=0), failures=[3])
    c.members[0].breaker.min_requests = 4
    outcomes = []
    for _ in range(200):
        clock.now += 0.01
        try:
            collect(c)
            outcomes.append("ok")
        except UpstreamError:
            outcomes.append("failed")
        except Unavailable:
            outcomes.append("refused")
    member = c.members[0]
    assert member.breaker.ejections >= 1 and member.counts["panic"] > 0
    assert "refused" not in outcomes, "never refused while some requests succeed"
    assert outcomes.count("ok") == 100


def test_a_dead_only_deployment_is_refused_fast_without_a_call() -> None:
    a = Scripted("a", default=UpstreamError("refused"))
    c, _ = chain([a], RetryPolicy(retries=0), failures=[3])
    for _ in range(3):
        with pytest.raises(UpstreamError):
            collect(c)
    for _ in range(10):
        with pytest.raises(Unavailable) as caught:
            collect(c)
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert a.calls == 3 and c.members[0].counts["panic"] == 0


def test_panic_threshold_spreads_over_ejected_members_that_still_answer() -> None:
    a, b, d = Scripted("a"), Scripted("b"), Scripted("d")
    c, clock = chain([a, b, d], RetryPolicy(retries=0))
    now = clock.now
    for member in c.members[:2]:  # two of three ejected, not dead: below the 50% threshold
        member.breaker._eject(now)
    for _ in range(30):
        collect(c)
    assert a.calls > 0 and b.calls > 0 and d.calls > 0
    c.members[0].breaker.consecutive = 3  # a is dead: panic leaves it out
    calls = a.calls
    for _ in range(10):
        collect(c)
    assert a.calls == calls


def test_a_fallback_tier_comes_before_panic() -> None:
    a, spare = Scripted("a"), Scripted("spare")
    c, clock = chain([a, spare], RetryPolicy(retries=0), priority=[0, 1])
    c.members[0].breaker._eject(clock.now)  # ejected, not dead
    for _ in range(5):
        assert collect(c) == answered_by("spare")
    assert a.calls == 0
