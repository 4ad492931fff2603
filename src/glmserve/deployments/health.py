"""Health checks of upstream deployments, in the background: periodic, and on demand while ejected.

Periodic (``health_interval_s``): a failed probe marks the deployment unhealthy, so the balancer
skips it while a healthy one is left; a passing probe marks it healthy again.

On demand: while a deployment's breaker has it ejected, it is probed every
``breaker.probe_delay()`` (``probe_interval_s``, doubling per ejection in a row). A passing
probe ends the ejection at once, so an upstream that was restarted serves again within about
``probe_interval_s`` instead of after the whole ejection time. Probes use a fresh connection.
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
    interval_s: float  # periodic checks; 0: only on demand while ejected


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
        breaker = check.member.breaker
        on_demand = breaker.enabled and breaker.probe_interval > 0
        if check.interval_s > 0:
            await self.check_once(check)
        while True:
            if on_demand and breaker.state == "open":
                await asyncio.sleep(breaker.probe_delay())
                if breaker.state == "open":
                    await self.check_once(check)
                continue
            period = check.interval_s * (0.9 + 0.2 * random.random()) if check.interval_s > 0 else None
            if not on_demand:
                await asyncio.sleep(period or 0)
                await self.check_once(check)
                continue
            try:  # the ejection event is set exactly while the breaker is open
                await asyncio.wait_for(breaker.ejected.wait(), period)
            except TimeoutError:
                await self.check_once(check)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
