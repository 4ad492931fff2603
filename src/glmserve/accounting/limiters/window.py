"""Sliding-window arithmetic shared by the limiters (the Redis Lua script mirrors it).

Amounts are counted in per-second buckets. At time ``now`` the window holds the buckets of the
last ``window_s`` whole seconds: bucket ``s`` counts while ``s > floor(now) - window_s`` and
leaves the window at ``now = s + window_s``.
"""

from __future__ import annotations

import math


class Window:
    """Per-second buckets, oldest first, with their running total (every step but a clock that
    went back is O(1) or O(buckets leaving); a request's admission reads the total several times)."""

    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self.buckets: dict[int, int] = {}  # in ascending order of second
        self._total = 0

    def prune(self, now: float) -> None:
        oldest = math.floor(now) - self.window_s
        buckets = self.buckets
        while buckets:
            second = next(iter(buckets))
            if second > oldest:
                return
            self._total -= buckets.pop(second)

    def total(self) -> int:
        return self._total

    def add(self, second: int, amount: int) -> None:
        buckets = self.buckets
        if second in buckets:
            buckets[second] += amount
        else:
            behind = bool(buckets) and second < next(reversed(buckets))
            buckets[second] = amount
            if behind:  # the clock went back: keep the order
                self.buckets = dict(sorted(buckets.items()))
        self._total += amount

    def adjust(self, second: int, delta: int) -> None:
        """Correct an earlier count, if its bucket is still in the window."""
        if second in self.buckets:
            self.buckets[second] += delta
            self._total += delta

    def wait_below(self, limit: int, now: float) -> float:
        """Seconds until the total drops below ``limit`` as old buckets leave the window."""
        need, freed = self._total - limit + 1, 0
        for second, amount in self.buckets.items():
            freed += amount
            if freed >= need:
                return max(0.0, second + self.window_s - now)
        return float(self.window_s)

    def reset_s(self, now: float) -> float:
        """Seconds until the oldest counted use leaves the window (0 when nothing is counted)."""
        if not self.buckets:
            return 0.0
        return max(0.0, next(iter(self.buckets)) + self.window_s - now)
