"""The keep-alive pools of ``http_client``: at most ``limit`` connections to one
``scheme://host:port``; the addresses a name resolves to, kept ``DNS_TTL_S`` and tried in turn;
TLS with ``ssl.create_default_context()`` (the system's CAs, or ``SSL_CERT_FILE``); and
``Target``, a URL as the head of a request."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from glmserve.engines.upstream.http_client import (
    CannotConnect,
    Connection,
    NameNotResolved,
    Response,
    TlsFailed,
)

DNS_TTL_S = 300.0
_TLS: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


class Pool:
    """The keep-alive connections to one ``scheme://host:port``."""

    def __init__(self, scheme: str, host: str, port: int, limit: int, connect_timeout: float,
                 keepalive_s: float = 30.0):  # fmt: skip
        self.host, self.port = host, port
        self.tls = scheme == "https"
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.keepalive_s = keepalive_s
        self.open: set[Connection] = set()
        self.idle: list[Connection] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._addresses: list[Any] = []
        self._resolved_at = -DNS_TTL_S

    async def request(self, head: bytes, body: bytes, fresh: bool) -> Response:
        """Send ``head`` (the request line and headers, ending in a blank line) and ``body``;
        the answer once its head has arrived. ``fresh``: never a pooled connection."""
        conn = await self._acquire(fresh)
        response = Response(conn)
        try:
            return await conn.send(response, head, body)
        except BaseException:
            conn.close()  # the answer's state is unknown (timed out, cancelled, broken)
            raise

    async def _acquire(self, fresh: bool) -> Connection:
        while True:
            if not fresh:
                while self.idle:
                    conn = self.idle.pop()
                    if conn.lost or time.monotonic() - conn.idle_since > self.keepalive_s:
                        conn.close()
                        continue
                    conn.reused = True
                    return conn
            if len(self.open) < self.limit:
                break
            if self.idle:  # a fresh connection is wanted and the pool is full of idle ones
                self.idle.pop(0).close()
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the wake goes to the next caller
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        conn = Connection(self)
        self.open.add(conn)
        try:
            await self._connect(conn)
        except BaseException:
            self.forget(conn)
            raise
        return conn

    async def _connect(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        where = f"{self.host}:{self.port}"
        async with asyncio.timeout(self.connect_timeout):
            addresses = await self._resolve(loop, where)
            errors: list[OSError] = []
            for family, address in addresses:
                try:
                    await loop.create_connection(
                        lambda: conn, address[0], address[1], family=family,
                        ssl=_tls() if self.tls else None,
                        server_hostname=self.host if self.tls else None,
                    )  # fmt: skip
                    return
                except ssl.SSLError as exc:
                    raise TlsFailed(where, exc) from None
                except OSError as exc:
                    errors.append(exc)
        refused = [e for e in errors if isinstance(e, ConnectionRefusedError)]
        raise CannotConnect(where, refused[0] if len(refused) == len(errors) else errors[-1])

    async def _resolve(self, loop: asyncio.AbstractEventLoop, where: str) -> list[Any]:
        if time.monotonic() - self._resolved_at < DNS_TTL_S and self._addresses:
            return self._addresses
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameNotResolved(where, exc) from None
        self._addresses = [(family, address) for family, _, _, _, address in infos]
        self._resolved_at = time.monotonic()
        return self._addresses

    def put(self, conn: Connection) -> None:
        conn.idle_since = time.monotonic()
        self.idle.append(conn)
        if conn.idle_since - self.idle[0].idle_since > self.keepalive_s:  # the oldest idled too long
            self.idle.pop(0).close()
        self._wake_one()

    def forget(self, conn: Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            if conn in self.idle:
                self.idle.remove(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for conn in list(self.open):
            conn.close()
        self.idle.clear()


class Target:
    """A URL as one pool's request line: what ``connection`` caches per URL."""

    __slots__ = ("authority", "host", "key", "path", "port", "scheme")

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.key = (self.scheme, self.host, self.port)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.authority = parts.netloc.rsplit("@", 1)[-1]

    def head(self, method: str, headers: dict[str, str], length: int | None) -> bytes:
        lines = [f"{method} {self.path} HTTP/1.1\r\nhost: {self.authority}\r\naccept-encoding: identity\r\n"]
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}\r\n")
        if length is not None:
            lines.append(f"content-length: {length}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")
