"""The HTTP connections of one upstream: a keep-alive pool, and transparent retries of the
connection failures that happen before any response byte.

A request that failed before the upstream answered anything — the connection was refused, was
reset, or was a pooled keep-alive connection that the upstream had already closed (*stale*:
"Can not write request body", "Server disconnected") — produced no answer, so it is sent again
at once, on a fresh connection (never one from the pool, which may hold more stale ones), at
most ``retries`` times. Each retry is counted by reason (``stale``, ``reset``, ``refused``) and
exported in ``/metrics`` as ``glmserve_upstream_connection_retries``.

Not retried here: timeouts (they already cost their time), TLS and DNS failures (another try
fails the same way), and anything after the response began — those are the deployment chain's
business (fallback, or a retry round within the model's retry budget). The retries are bounded
per attempt; a deployment that fails this way every time is ejected by its breaker, which
bounds the load during an outage.
"""

from __future__ import annotations

import errno
from collections import Counter
from typing import Any

import aiohttp

REASONS = ("stale", "reset", "refused")


async def _on_reuse(_session: Any, context: Any, _params: Any) -> None:
    state = context.trace_request_ctx
    if isinstance(state, dict):
        state["reused"] = True


def retry_reason(exc: BaseException, reused: bool) -> str | None:
    """Why ``exc`` may be retried on a fresh connection, or None when it may not."""
    if isinstance(exc, TimeoutError | aiohttp.ClientSSLError | aiohttp.ClientConnectorDNSError):
        return None
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError) or exc.os_error.errno == errno.ECONNREFUSED
        return "refused" if refused else None
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return "stale" if reused else "reset"
    return None


class Connections:
    def __init__(self, pool_size: int, connect_timeout: float, retries: int):
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self.retries = retries
        self.retried: Counter[str] = Counter({reason: 0 for reason in REASONS})
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    def _session(self, force_close: bool) -> aiohttp.ClientSession:
        keepalive: dict[str, Any] = {"force_close": True} if force_close else {"keepalive_timeout": 30}
        connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300, **keepalive)
        trace = aiohttp.TraceConfig()
        trace.on_connection_reuseconn.append(_on_reuse)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            trust_env=False,
            auto_decompress=True,
            trace_configs=[trace],
        )

    def pooled(self) -> aiohttp.ClientSession:
        if self._pooled is None or self._pooled.closed:
            self._pooled = self._session(force_close=False)
        return self._pooled

    def fresh(self) -> aiohttp.ClientSession:
        """A session whose every request opens a new connection (retries, health probes)."""
        if self._fresh is None or self._fresh.closed:
            self._fresh = self._session(force_close=True)
        return self._fresh

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """``POST`` with transparent retries; returns once the response's head has arrived."""
        session = self.pooled()
        for attempt in range(self.retries + 1):
            state: dict[str, bool] = {"reused": False}
            try:
                return await session.post(
                    url, data=body, headers=headers, allow_redirects=False, trace_request_ctx=state
                )
            except (aiohttp.ClientConnectionError, ConnectionError) as exc:
                reason = retry_reason(exc, state["reused"])
                if reason is None or attempt == self.retries:
                    raise
                self.retried[reason] += 1
                session = self.fresh()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()
