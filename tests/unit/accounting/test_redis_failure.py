"""Redis unreachable: the limiter fails open (uncounted admission) or closed (503), at once."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from glmserve.accounting.limiters.base import Quota
from glmserve.accounting.limiters.redis import RedisLimiter
from glmserve.errors import Unavailable


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_fail_open_admits_uncounted_and_stops_asking_for_a_second() -> None:
    async def run() -> None:
        limiter = RedisLimiter(closed_port_url(), "t", 30, fail_open=True)
        try:
            decision = await limiter.acquire("k", Quota(rpm=1), 10)
            assert decision.unmetered and decision.lease is None and decision.refused is None
            started = time.monotonic()
            for _ in range(50):
                assert (await limiter.acquire("k", Quota(rpm=1), 10)).unmetered
            assert time.monotonic() - started < 0.5, "while Redis is down nobody waits for it"
            assert limiter.failures == 51
        finally:
            await limiter.close()

    asyncio.run(run())


def test_fail_closed_refuses_with_503_and_retry_after() -> None:
    async def run() -> None:
        limiter = RedisLimiter(closed_port_url(), "t", 30, fail_open=False)
        try:
            with pytest.raises(Unavailable) as caught:
                await limiter.acquire("k", Quota(rpm=1), 10)
            assert caught.value.status == 503 and caught.value.retry_after == 1
        finally:
            await limiter.close()

    asyncio.run(run())
