"""limiters/window.py, limiters/memory.py and limits.py: the arithmetic of per-key limits."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glmserve.accounting.auth import Principal
from glmserve.accounting.limiters.base import Decision, Quota
from glmserve.accounting.limiters.memory import MemoryLimiter
from glmserve.accounting.limiters.window import Window
from glmserve.accounting.limits import Limits, duration, ratelimit_headers, worst_case_tokens
from glmserve.config.accounting import LimitSettings
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.store.key_records import KeyPolicy

T0 = 1_700_000_000.25


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(limiter: MemoryLimiter, quota: Quota, tokens: int = 1, key: str = "k") -> Decision:
    return asyncio.run(limiter.acquire(key, quota, tokens))


def test_window_counts_the_last_60_whole_seconds() -> None:
    window = Window(60)
    window.add(100, 2)
    window.add(130, 3)
    window.prune(159.9)
    assert window.total() == 5
    window.prune(160.0)  # bucket 100 leaves at 100 + 60
    assert window.total() == 3


def test_wait_below_frees_just_enough_of_the_oldest_buckets() -> None:
    window = Window(60)
    for second, amount in ((100, 2), (110, 1), (120, 4)):
        window.add(second, amount)
    assert window.wait_below(7, now=125.5) == pytest.approx(34.5)  # bucket 100 must go: 160 - 125.5
    assert window.wait_below(5, now=125.5) == pytest.approx(44.5)  # 100 and 110 must go
    assert window.wait_below(1, now=125.5) == pytest.approx(54.5)  # everything
    assert window.reset_s(125.5) == pytest.approx(34.5)


def test_rpm_admits_exactly_the_limit_then_refuses_until_the_window_moves() -> None:
    clock = Clock()
    limiter = MemoryLimiter(600, clock=clock)
    quota = Quota(rpm=3)
    admitted = [run(limiter, quota).lease is not None for _ in range(5)]
    assert admitted == [True, True, True, False, False]
    refused = run(limiter, quota)
    assert refused.refused == "requests"
    assert refused.retry_after_s == pytest.approx(60 - 0.25)
    assert refused.requests is not None and refused.requests.remaining == 0
    clock.now += 59.7  # still inside the window
    assert run(limiter, quota).lease is None
    clock.now += 0.1  # bucket T0 has left
    assert run(limiter, quota).lease is not None


def test_refusals_are_not_counted() -> None:
    clock = Clock()
    limiter = MemoryLimiter(600, clock=clock)
    for _ in range(10):
        run(limiter, Quota(rpm=1))
    clock.now += 60
    assert run(limiter, Quota(rpm=1)).lease is not None


def test_tpm_admits_while_below_and_settles_to_the_real_use() -> None:
    limiter = MemoryLimiter(600, clock=Clock())
    quota = Quota(tpm=100)
    first = run(limiter, quota, tokens=60)
    second = run(limiter, quota, tokens=60)  # 60 < 100: admitted, may take the count past the limit
    assert first.lease and second.lease
    third = run(limiter, quota, tokens=1)
    assert third.refused == "tokens" and third.tokens is not None and third.tokens.used == 120
    asyncio.run(limiter.release(first.lease, 10))
    asyncio.run(limiter.release(second.lease, 20))  # 30 used in all now
    after = run(limiter, quota, tokens=5)
    assert after.lease is not None and after.tokens is not None and after.tokens.used == 35


def test_concurrency_slots_are_held_until_released_or_expired() -> None:
    clock = Clock()
    limiter = MemoryLimiter(30, clock=clock)
    quota = Quota(concurrency=2)
    a, b = run(limiter, quota), run(limiter, quota)
    refused = run(limiter, quota)
    assert refused.refused == "concurrency" and refused.retry_after_s == 1.0
    assert a.lease is not None and b.lease is not None
    asyncio.run(limiter.release(a.lease, None))
    assert run(limiter, quota).lease is not None
    clock.now += 30  # b's replica "died": its lease expires
    assert run(limiter, quota).lease is not None


def test_undo_uncounts_the_request_and_its_tokens() -> None:
    limiter = MemoryLimiter(600, clock=Clock())
    quota = Quota(rpm=1, tpm=10)
    first = run(limiter, quota, tokens=50)
    assert first.lease is not None
    asyncio.run(limiter.release(first.lease, None, undo=True))
    again = run(limiter, quota, tokens=5)
    assert again.lease is not None and again.requests and again.requests.used == 1
    assert again.tokens and again.tokens.used == 5


def test_keys_do_not_share_limits() -> None:
    limiter = MemoryLimiter(600, clock=Clock())
    assert run(limiter, Quota(rpm=1), key="a").lease
    assert run(limiter, Quota(rpm=1), key="b").lease
    assert run(limiter, Quota(rpm=1), key="a").lease is None


def test_user_keys_get_the_configured_defaults_admins_only_their_own() -> None:
    limits = Limits(MemoryLimiter(60), budgets=None, defaults=LimitSettings(rpm=5, concurrency=2))  # type: ignore[arg-type]
    user = Principal("u", "u", "user", KeyPolicy(rpm=9))
    admin = Principal("a", "a", "admin", KeyPolicy(tpm=7))
    assert limits.quota(user) == Quota(rpm=9, tpm=None, concurrency=2)
    assert limits.quota(admin) == Quota(rpm=None, tpm=7, concurrency=None)
    assert limits.quota(Principal("s", "static", "admin")).unlimited


def test_worst_case_covers_prompt_bytes_and_max_tokens_capped_by_the_window() -> None:
    req = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x" * 1000}], "max_tokens": 50}
    )
    worst = worst_case_tokens(to_generation(req), 4096)
    assert 1000 + 50 < worst < 4096
    unbounded = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert worst_case_tokens(to_generation(unbounded), 4096) == 4096


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0123, "13ms"), (1.5, "1.5s"), (59.744, "59.744s"), (60, "1m0s"), (361, "6m1s")]
)
def test_reset_durations_look_like_openai(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_ratelimit_headers_only_for_the_limits_a_key_has() -> None:
    limiter = MemoryLimiter(600, clock=Clock())
    headers = ratelimit_headers(run(limiter, Quota(rpm=2)))
    assert headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "59.75s",
    }
    assert ratelimit_headers(run(limiter, Quota(concurrency=1), key="c")) == {}


class _NaiveWindow:
    """The definition, computed from scratch at every question."""

    def __init__(self, window_s: int) -> None:
        self.window_s, self.buckets = window_s, {}  # type: ignore[var-annotated]

    def live(self, now: float) -> dict[int, int]:
        return {s: a for s, a in self.buckets.items() if s > math.floor(now) - self.window_s}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(("add", "adjust", "ask")), st.floats(-3, 40), st.integers(-5, 50)),
        max_size=60,
    )
)
def test_window_running_total_matches_the_definition_even_when_the_clock_goes_back(
    steps: list[tuple[str, float, int]],
) -> None:
    window, naive, now = Window(10), _NaiveWindow(10), 1000.0
    for op, dt, amount in steps:
        now += dt  # dt < 0: the clock went back
        second = math.floor(now)
        window.prune(now)
        naive.buckets = naive.live(now)
        if op == "add" and amount > 0:
            window.add(second, amount)
            naive.buckets[second] = naive.buckets.get(second, 0) + amount
        elif op == "adjust":
            target = second - abs(amount) % 12
            window.adjust(target, -1)
            if target in naive.buckets:
                naive.buckets[target] -= 1
        assert window.total() == sum(naive.buckets.values())
        assert list(window.buckets) == sorted(window.buckets)
        oldest = min(naive.buckets) if naive.buckets else None
        assert window.reset_s(now) == (0.0 if oldest is None else max(0.0, oldest + 10 - now))
