"""The HTTP connections of one upstream: keep-alive pools (``http_pool``, ``http_client``), and transparent
retries of the connection failures that happen before any response byte.

A request that failed before the upstream answered anything — the connection was refused, was
reset, or was a pooled keep-alive connection that the upstream had already closed (*stale*) —
produced no answer, so it is sent again at once, on a fresh connection (never one from the pool,
which may hold more stale ones), at most ``retries`` times. Each retry is counted by reason
(``stale``, ``reset``, ``refused``) and exported in ``/metrics`` as
``glmserve_upstream_connection_retries``.

Not retried here: timeouts (they already cost their time), TLS and DNS failures (another try
fails the same way), and anything after the response began — those are the deployment chain's
business (fallback, or a retry round within the model's retry budget). The retries are bounded
per attempt; a deployment that fails this way every time is ejected by its breaker, which
bounds the load during an outage.
"""

from __future__ import annotations

from collections import Counter

from glmserve.engines.upstream.http_client import (
    CannotConnect,
    Disconnected,
    NameNotResolved,
    Response,
    TlsFailed,
)
from glmserve.engines.upstream.http_pool import Pool, Target

REASONS = ("stale", "reset", "refused")


def retry_reason(exc: BaseException) -> str | None:
    """Why ``exc`` may be retried on a fresh connection, or None when it may not."""
    if isinstance(exc, NameNotResolved | TlsFailed):
        return None
    if isinstance(exc, CannotConnect):
        return "refused" if exc.refused else None
    if isinstance(exc, Disconnected):
        return "stale" if exc.reused else "reset"
    return None


class Connections:
    def __init__(self, pool_size: int, connect_timeout: float, retries: int):
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self.retries = retries
        self.retried: Counter[str] = Counter({reason: 0 for reason in REASONS})
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._targets: dict[str, Target] = {}

    def _target(self, url: str) -> tuple[Target, Pool]:
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = Target(url)
        pool = self._pools.get(target.key)
        if pool is None:
            pool = self._pools[target.key] = Pool(
                target.scheme, target.host, target.port, self._pool_size, self._connect_timeout
            )
        return target, pool

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """``POST`` with transparent retries; returns once the response's head has arrived."""
        target, pool = self._target(url)
        head = target.head("POST", headers, len(body))
        for attempt in range(self.retries + 1):
            try:
                return await pool.request(head, body, fresh=attempt > 0)
            except (CannotConnect, Disconnected) as exc:
                reason = retry_reason(exc)
                if reason is None or attempt == self.retries:
                    raise
                self.retried[reason] += 1
        raise AssertionError("unreachable")

    async def get(self, url: str, headers: dict[str, str]) -> Response:
        """One ``GET`` on a fresh connection, not retried (health probes)."""
        target, pool = self._target(url)
        return await pool.request(target.head("GET", headers, None), b"", fresh=True)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
