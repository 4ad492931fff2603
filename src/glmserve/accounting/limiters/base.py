"""What every limiter does: check a key's limits and count a request in one atomic step.

A key's requests and tokens are counted per whole second over a sliding window of the last
``window_s`` seconds; a request is admitted while the counts are below the limits (so a
request's own tokens may take the token count past the limit, never a second one), and while
the key has fewer than ``concurrency`` requests in flight. An admitted request holds a ``Lease``
until it is released; a lease left behind by a crashed replica expires after ``lease_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

WINDOW_S = 60
Reason = Literal["requests", "tokens", "concurrency"]


@dataclass(frozen=True, slots=True)
class Quota:
    """A key's limits; ``None`` means none."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.concurrency is None


@dataclass(frozen=True, slots=True)
class WindowState:
    limit: int
    used: int
    reset_s: float  # until the oldest counted use leaves the window

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class Lease:
    key: str
    lease_id: str
    second: int  # the bucket the request and its tokens were counted in
    tokens: int
    counted_request: bool
    counted_tokens: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """An admission (``lease`` set) or a refusal (``refused`` and ``retry_after`` set); or, with
    ``unmetered``, an admission that nothing counted (a shared limiter failing open)."""

    lease: Lease | None
    refused: Reason | None = None
    retry_after_s: float = 0.0
    requests: WindowState | None = None
    tokens: WindowState | None = None
    unmetered: bool = False


class Limiter(Protocol):
    async def acquire(self, key: str, quota: Quota, tokens: int) -> Decision:
        """Check every limit of ``quota`` and, if all pass, count the request: atomically."""
        ...

    async def release(self, lease: Lease, used_tokens: int | None, *, undo: bool = False) -> None:
        """End the lease; correct its tokens to ``used_tokens``; ``undo`` uncounts the request."""
        ...

    async def close(self) -> None: ...
