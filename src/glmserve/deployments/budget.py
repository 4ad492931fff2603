"""The retry budget of a model, and the backoff between retry rounds.

Retries may add at most ``ratio`` of the requests seen in the last ``window_s`` seconds, or
``minimum`` retries per window if that is more, so that a quiet model can still retry (Envoy's
retry budget works the same way: a percentage, never below a floor). During a full outage the
extra load on the upstreams is therefore bounded, however many clients keep asking. Counts are
kept in one bucket per second.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RetryBudget:
    def __init__(
        self, ratio: float, minimum: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.ratio = ratio
        self.minimum = minimum
        self.window = max(1, math.ceil(window_s))
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, requests, retries]
        self.requests = 0
        self.retries = 0

    def _bucket(self) -> list[int]:
        second = int(self._clock())
        while self._buckets and self._buckets[0][0] <= second - self.window:
            _, requests, retries = self._buckets.popleft()
            self.requests -= requests
            self.retries -= retries
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def record_request(self) -> None:
        self._bucket()[1] += 1
        self.requests += 1

    def allowed(self) -> int:
        self._bucket()
        return self._allowance()

    def _allowance(self) -> int:
        """``ratio`` of the window's requests, or ``minimum`` if that is more (the README's rule).

        The larger, not the sum: a full outage then adds at most ``ratio`` of the traffic once
        ``ratio * requests`` passes the floor, so amplification stays at ``1 + ratio``."""
        return max(self.minimum, math.floor(self.ratio * self.requests))

    def try_spend(self) -> bool:
        """Take one retry from the budget, if it has one."""
        bucket = self._bucket()
        if self.retries >= self._allowance():
            return False
        bucket[2] += 1
        self.retries += 1
        return True


def backoff(round_: int, base_s: float, max_s: float, rand: float) -> float:
    """Exponential, capped, with "equal jitter": half fixed, half random (``rand`` in [0, 1))."""
    ceiling = min(max_s, base_s * float(1 << min(round_, 30)))
    return ceiling / 2 + ceiling / 2 * rand
