"""Outlier ejection per deployment: by failure *rate* over a sliding window, like Envoy's
``failure_percentage`` detector, with several half-open probes.

- closed (in rotation): each attempt's outcome is counted in one-second buckets over
  ``window_s``. When the window holds at least ``failures`` failures *and* they are at least
  ``failure_rate`` of its attempts (of at least ``min_requests``, unless every one failed), the
  deployment is ejected. An upstream that fails 20% of
  the time is therefore never ejected (retries hide its failures), while a dead one is ejected
  after ``failures`` attempts.
- a deployment that cannot even be connected to (refused, connect timeout — after the
  transparent connection retries) ``failures`` times in a row is ejected at once, whatever the
  window holds (Envoy's consecutive local-origin failures): a crashed upstream that was busy a
  moment ago must not keep failing requests until its failures outnumber its past successes.
- open (ejected): out of normal rotation for ``cooldown_s × 2^(n-1)`` (the n-th ejection in a
  row), at most ``max_cooldown_s``. Meanwhile ``deployments.health`` probes the upstream every
  ``probe_interval_s × 2^(n-1)`` (at most the ejection time); a passing probe ends the ejection
  at once, so a restarted upstream is back within about ``probe_interval_s``.
- half-open: up to ``probes`` requests at once are let through. The first success closes the
  breaker (with a fresh window); ``probes`` failures in a row eject it again, for twice as long.
  One unlucky probe does not decide the fate of a flaky upstream.

An attempt that ends in neither (the client left, the request itself was invalid) only gives
back its probe permit. ``dead`` says the most recent ``failures`` attempts all failed: the
balancer's panic mode (``balancer.select``) routes to an ejected deployment unless it is dead,
so a model is never refused outright while some of its requests still succeed, and a dead
upstream still gets fast 503s.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Literal

State = Literal["closed", "open", "half_open"]


class OutcomeWindow:
    """Successes and failures of the last ``window_s`` seconds, in one-second buckets."""

    def __init__(self, window_s: float) -> None:
        self.window = max(1, round(window_s))
        self._buckets: deque[list[int]] = deque()  # [second, ok, failed]
        self.ok = 0
        self.failed = 0

    def _expire(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.window:
            _, ok, failed = self._buckets.popleft()
            self.ok -= ok
            self.failed -= failed

    def add(self, now: float, ok: bool) -> None:
        second = int(now)
        self._expire(second)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        bucket = self._buckets[-1]
        if ok:
            bucket[1] += 1
            self.ok += 1
        else:
            bucket[2] += 1
            self.failed += 1

    def counts(self, now: float) -> tuple[int, int]:
        self._expire(int(now))
        return self.ok, self.failed

    def clear(self) -> None:
        self._buckets.clear()
        self.ok = self.failed = 0


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        max_cooldown_s: float,
        *,
        failure_rate: float = 0.5,
        min_requests: int = 20,
        window_s: float = 10.0,
        probes: int = 3,
        probe_interval_s: float = 0.5,
    ):
        self.threshold = failures
        self.failure_rate = failure_rate
        self.min_requests = min_requests
        self.base_cooldown = cooldown_s
        self.max_cooldown = max(max_cooldown_s, cooldown_s)
        self.probes = max(1, probes)
        self.probe_interval = probe_interval_s
        self.window = OutcomeWindow(window_s)
        self.state: State = "closed"
        self.cooldown = cooldown_s
        self.open_until = 0.0
        self.streak = 0  # ejections since the breaker last closed
        self.ejections = 0  # ever, for /metrics
        self.consecutive = 0  # failed attempts in a row
        self.unreachable = 0  # of them, attempts that could not even connect, in a row
        self.probing = 0  # half-open permits out
        self._probe_failures = 0
        self.ejected = asyncio.Event()  # set while open: wakes the on-demand probe

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def dead(self) -> bool:
        """The last ``failures`` attempts all failed: nothing suggests any request would succeed."""
        return self.enabled and self.consecutive >= self.threshold

    def in_rotation(self, now: float) -> bool:
        """Not ejected (closed, half-open, or open with its ejection time over)."""
        return self.state != "open" or now >= self.open_until

    def available(self, now: float) -> bool:
        """May a request be sent now outside panic? (Does not take a probe permit.)"""
        if not self.enabled or self.state == "closed":
            return True
        if self.state == "open" and now < self.open_until:
            return False
        return self.probing < self.probes

    def acquire(self, now: float) -> bool:
        """A request is being sent; True when it holds a half-open probe permit."""
        if not self.enabled:
            return False
        if self.state == "open" and now >= self.open_until:
            self.state, self._probe_failures = "half_open", 0
            self.ejected.clear()
        if self.state == "half_open" and self.probing < self.probes:
            self.probing += 1
            return True
        return False  # closed, or sent in panic while ejected

    def success(self, now: float, permit: bool = False) -> None:
        self.window.add(now, True)
        self.consecutive = self.unreachable = 0
        self.release(permit)
        if self.state == "half_open":
            self._close()

    def failure(self, now: float, permit: bool = False, *, unreachable: bool = False) -> None:
        self.window.add(now, False)
        self.consecutive += 1
        self.unreachable = self.unreachable + 1 if unreachable else 0
        self.release(permit)
        if not self.enabled:
            return
        if self.state == "half_open":
            self._probe_failures += 1
            if self._probe_failures >= self.probes:
                self._eject(now)
        elif self.state == "closed" and (self._outlier(now) or self.unreachable >= self.threshold):
            self._eject(now)

    def _outlier(self, now: float) -> bool:
        """Enough failures at a high enough rate, judged on at least ``min_requests`` attempts
        unless every attempt in the window failed (a few unlucky ones are no rate)."""
        ok, failed = self.window.counts(now)
        if failed < self.threshold or (ok and ok + failed < self.min_requests):
            return False
        return failed >= self.failure_rate * (ok + failed)

    def release(self, permit: bool) -> None:
        if permit:
            self.probing = max(0, self.probing - 1)

    def probe_now(self, now: float) -> None:
        """An active or on-demand health check passed: end the ejection now."""
        if self.state == "open":
            self.open_until = min(self.open_until, now)

    def probe_delay(self) -> float:
        """How long the on-demand probe waits between checks of this ejected deployment."""
        return min(self.cooldown, self.probe_interval * float(1 << min(max(self.streak - 1, 0), 16)))

    def retry_after(self, now: float) -> float:
        """Seconds until this deployment may be tried again (the probe may make it sooner)."""
        if self.state != "open" or now >= self.open_until:
            return 0.0
        wait = self.open_until - now
        return min(wait, self.probe_delay()) if self.probe_interval > 0 else wait

    def _eject(self, now: float) -> None:
        self.streak += 1
        self.ejections += 1
        self.cooldown = min(self.base_cooldown * float(1 << min(self.streak - 1, 16)), self.max_cooldown)
        self.state, self.open_until = "open", now + self.cooldown
        self.ejected.set()

    def _close(self) -> None:
        self.state, self.streak, self.cooldown = "closed", 0, self.base_cooldown
        self.window.clear()
        self.ejected.clear()
