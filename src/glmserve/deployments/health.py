"""Active health checks: each upstream deployment is probed in the background.

A failed probe marks the deployment unhealthy, so the balancer skips it while a healthy one is
left; a passing probe marks it healthy again and, if its breaker is open, lets the next request
probe it at once instead of waiting out the cooldown.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from glmserve.deployments.member import Member

log = logging.getLogger("glmserve.health")


@dataclass(frozen=True, slots=True)
class Check:
    member: Member
    probe: Callable[[], Awaitable[bool]]
    interval_s: float


class HealthChecker:
    def __init__(self, checks: list[Check], clock: Callable[[], float] = time.monotonic):
        self.checks = checks
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(check)) for check in self.checks]

    async def check_once(self, check: Check) -> bool:
        ok = await check.probe()
        member = check.member
        if ok != member.healthy:
            log.log(
                logging.INFO if ok else logging.WARNING,
                "deployment %s is %s",
                member.label,
                "healthy" if ok else "failing its health check",
            )
        member.healthy = ok
        if ok:
            member.breaker.probe_now(self._clock())
        return ok

    async def _run(self, check: Check) -> None:
        while True:
            await self.check_once(check)
            await asyncio.sleep(check.interval_s * (0.9 + 0.2 * random.random()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
