"""A circuit breaker per deployment.

Closed: requests flow; ``failures`` consecutive failures open it. Open: no requests until
``cooldown`` has passed (or an active health check succeeds); then it is half-open and lets
exactly one probe request through. The probe's success closes it; its failure opens it again
with the cooldown doubled, up to ``max_cooldown``. A request that ends in neither (the client
left, the request itself was invalid) just returns the probe permit.
"""

from __future__ import annotations

from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, max_cooldown_s: float):
        self.threshold = failures
        self.base_cooldown = cooldown_s
        self.max_cooldown = max(max_cooldown_s, cooldown_s)
        self.cooldown = cooldown_s
        self.state: State = "closed"
        self.consecutive = 0
        self.open_until = 0.0
        self.probing = False

    def available(self, now: float) -> bool:
        """May a request be sent now? (Does not take the half-open probe permit.)"""
        if self.state == "closed" or self.threshold == 0:
            return True
        if self.state == "open":
            return now >= self.open_until
        return not self.probing

    def acquire(self, now: float) -> None:
        """A request is being sent."""
        if self.state == "open" and now >= self.open_until:
            self.state = "half_open"
        if self.state == "half_open":
            self.probing = True

    def success(self) -> None:
        self.state, self.consecutive, self.cooldown, self.probing = "closed", 0, self.base_cooldown, False

    def failure(self, now: float) -> None:
        self.consecutive += 1
        if self.threshold == 0:
            return
        if self.state == "half_open":
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self._open(now)
        elif self.state == "closed" and self.consecutive >= self.threshold:
            self._open(now)

    def release(self) -> None:
        self.probing = False

    def probe_now(self, now: float) -> None:
        """An active health check succeeded: let the next request probe at once."""
        if self.state == "open":
            self.open_until = min(self.open_until, now)

    def _open(self, now: float) -> None:
        self.state, self.open_until, self.probing = "open", now + self.cooldown, False
