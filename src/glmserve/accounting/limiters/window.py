"""Sliding-window arithmetic shared by the limiters (the Redis Lua script mirrors it).

Amounts are counted in per-second buckets. At time ``now`` the window holds the buckets of the
last ``window_s`` whole seconds: bucket ``s`` counts while ``s > floor(now) - window_s`` and
leaves the window at ``now = s + window_s``.
"""

from __future__ import annotations

import math


class Window:
    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self.buckets: dict[int, int] = {}

    def prune(self, now: float) -> None:
        oldest = math.floor(now) - self.window_s
        for second in [s for s in self.buckets if s <= oldest]:
            del self.buckets[second]

    def total(self) -> int:
        return sum(self.buckets.values())

    def add(self, second: int, amount: int) -> None:
        self.buckets[second] = self.buckets.get(second, 0) + amount

    def adjust(self, second: int, delta: int) -> None:
        """Correct an earlier count, if its bucket is still in the window."""
        if second in self.buckets:
            self.buckets[second] += delta

    def wait_below(self, limit: int, now: float) -> float:
        """Seconds until the total drops below ``limit`` as old buckets leave the window."""
        need, freed = self.total() - limit + 1, 0
        for second in sorted(self.buckets):
            freed += self.buckets[second]
            if freed >= need:
                return max(0.0, second + self.window_s - now)
        return float(self.window_s)

    def reset_s(self, now: float) -> float:
        """Seconds until the oldest counted use leaves the window (0 when nothing is counted)."""
        if not self.buckets:
            return 0.0
        return max(0.0, min(self.buckets) + self.window_s - now)
