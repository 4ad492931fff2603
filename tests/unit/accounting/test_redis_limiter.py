"""limiters/redis.py: the Lua script against a real Redis, side by side with the memory limiter.

Both limiters must give the same decisions for the same sequence of calls (real time, a short
window), and the Redis one must stay exact when many callers on separate connections (two
"replicas") race for the last slots.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis

from glmserve.accounting.limiters.base import Limiter, Quota
from glmserve.accounting.limiters.memory import MemoryLimiter
from glmserve.accounting.limiters.redis import RedisLimiter

T = TypeVar("T")
WINDOW_S = 2
KINDS = ["memory", "redis"]


def new_limiter(kind: str, url: str, prefix: str, lease_s: float = 30) -> Limiter:
    if kind == "memory":
        return MemoryLimiter(lease_s, window_s=WINDOW_S)
    return RedisLimiter(url, prefix, lease_s, window_s=WINDOW_S)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"glmserve-test-{secrets.token_hex(6)}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def with_limiter(kind: str, url: str, prefix: str, body: Callable[[Limiter], Awaitable[T]], **kw: float) -> T:
    async def main() -> T:
        limiter = new_limiter(kind, url, prefix, **kw)
        try:
            return await body(limiter)
        finally:
            await limiter.close()

    return asyncio.run(main())


def wait_for_next_second() -> None:
    """Start a scenario early in a second, so it does not straddle a window boundary by chance."""
    time.sleep(1.02 - (time.time() % 1))


@pytest.mark.parametrize("kind", KINDS)
def test_rpm_exact_and_refusals_not_counted(kind: str, redis_url: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> tuple[list[bool], float, int, bool]:
        decisions = [await limiter.acquire("k", Quota(rpm=3), 1) for _ in range(6)]
        refused = decisions[-1]
        assert refused.requests is not None
        await asyncio.sleep(refused.retry_after_s + 0.05)
        later = await limiter.acquire("k", Quota(rpm=3), 1)
        return (
            [d.lease is not None for d in decisions],
            refused.retry_after_s,
            refused.requests.used,
            bool(later.lease),
        )

    wait_for_next_second()
    admitted, retry_after, used, later = with_limiter(kind, redis_url, prefix, body)
    assert admitted == [True, True, True, False, False, False]
    assert 0 < retry_after <= WINDOW_S
    assert used == 3
    assert later, "the window moved on, so a request is admitted again"


@pytest.mark.parametrize("kind", KINDS)
def test_tpm_admits_while_below_and_release_corrects(kind: str, redis_url: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> list[tuple[bool, int | None]]:
        quota = Quota(tpm=100)
        out = []
        first = await limiter.acquire("k", quota, 60)
        second = await limiter.acquire("k", quota, 60)
        third = await limiter.acquire("k", quota, 1)
        for d in (first, second, third):
            out.append((d.lease is not None, d.tokens.used if d.tokens else None))
        assert first.lease and second.lease
        await limiter.release(first.lease, 10)
        await limiter.release(second.lease, 20)
        after = await limiter.acquire("k", quota, 5)
        out.append((after.lease is not None, after.tokens.used if after.tokens else None))
        return out

    wait_for_next_second()
    assert with_limiter(kind, redis_url, prefix, body) == [(True, 60), (True, 120), (False, 120), (True, 35)]


@pytest.mark.parametrize("kind", KINDS)
def test_concurrency_release_and_lease_expiry(kind: str, redis_url: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> list[str]:
        quota = Quota(concurrency=2)
        seen = []
        a = await limiter.acquire("k", quota, 1)
        b = await limiter.acquire("k", quota, 1)
        c = await limiter.acquire("k", quota, 1)
        seen.append(f"{bool(a.lease)} {bool(b.lease)} {c.refused}")
        assert a.lease is not None
        await limiter.release(a.lease, None)
        d = await limiter.acquire("k", quota, 1)
        seen.append(f"after release {bool(d.lease)}")
        await asyncio.sleep(1.1)  # b and d were never released: their leases expire
        e = await limiter.acquire("k", quota, 1)
        f = await limiter.acquire("k", quota, 1)
        seen.append(f"after expiry {bool(e.lease)} {bool(f.lease)}")
        return seen

    result = with_limiter(kind, redis_url, prefix, body, lease_s=1)
    assert result == ["True True concurrency", "after release True", "after expiry True True"]


@pytest.mark.parametrize("kind", KINDS)
def test_undo_uncounts(kind: str, redis_url: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> bool:
        first = await limiter.acquire("k", Quota(rpm=1, tpm=1000), 500)
        assert first.lease is not None
        await limiter.release(first.lease, None, undo=True)
        return (await limiter.acquire("k", Quota(rpm=1, tpm=1000), 500)).lease is not None

    wait_for_next_second()
    assert with_limiter(kind, redis_url, prefix, body)


def test_two_replicas_racing_share_one_exact_limit(redis_url: str, prefix: str) -> None:
    """60 concurrent acquisitions split over two limiters (separate connection pools)."""

    async def main() -> tuple[int, int]:
        a = RedisLimiter(redis_url, prefix, 30, window_s=WINDOW_S)
        b = RedisLimiter(redis_url, prefix, 30, window_s=WINDOW_S)
        try:
            quota = Quota(rpm=17, concurrency=25)
            calls = [(a if i % 2 else b).acquire("shared", quota, 1) for i in range(60)]
            decisions = await asyncio.gather(*calls)
            by_rpm = sum(d.lease is not None for d in decisions)
            quota2 = Quota(concurrency=5)
            slots = await asyncio.gather(*[(a if i % 2 else b).acquire("c", quota2, 1) for i in range(40)])
            return by_rpm, sum(d.lease is not None for d in slots)
        finally:
            await a.close()
            await b.close()

    wait_for_next_second()
    assert asyncio.run(main()) == (17, 5)
