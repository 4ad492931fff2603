"""One deployment of a model as the chain sees it: its engine plus live routing state."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from glmserve.deployments.breaker import CircuitBreaker
from glmserve.engines.base import Engine


@dataclass(eq=False, slots=True)
class Member:
    label: str
    kind: str
    engine: Engine
    breaker: CircuitBreaker
    weight: float = 1.0
    priority: int = 0
    max_concurrency: int | None = None
    in_flight: int = 0
    cooldown_until: float = 0.0  # an upstream Retry-After, or a 429 from the embedded queue
    healthy: bool | None = None  # the last active health check; None: never checked
    current: float = 0.0  # smooth weighted round-robin credit
    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "failures": 0, "panic": 0})

    def saturated(self) -> bool:
        return self.max_concurrency is not None and self.in_flight >= self.max_concurrency

    def available(self, now: float) -> bool:
        return now >= self.cooldown_until and not self.saturated() and self.breaker.available(now)

    def panic_available(self, now: float) -> bool:
        """Usable in panic: ejected or not, unless dead, cooling down or saturated."""
        return now >= self.cooldown_until and not self.saturated() and not self.breaker.dead

    def start(self, now: float, *, panic: bool = False) -> bool:
        """An attempt begins; True when it holds a half-open probe permit."""
        self.in_flight += 1
        self.counts["requests"] += 1
        if panic:
            self.counts["panic"] += 1
        return self.breaker.acquire(now)

    def cool_down(self, until: float) -> None:
        self.cooldown_until = max(self.cooldown_until, until)

    def status(self, now: float) -> dict[str, Any]:
        state = self.breaker.state
        if state == "open" and now >= self.breaker.open_until:
            state = "half_open"
        return {
            "deployment": self.label,
            "kind": self.kind,
            "breaker": state,
            "healthy": self.healthy,
            "in_flight": self.in_flight,
            "cooling_down_s": max(0, math.ceil(self.cooldown_until - now)),
            "requests": self.counts["requests"],
            "failures": self.counts["failures"],
            "ejections": self.breaker.ejections,
            "panic_requests": self.counts["panic"],
        }
