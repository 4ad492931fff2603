"""glmserve's HTTP/1.1 client for its upstreams: keep-alive pools on httptools (the parser
uvicorn uses), one request per connection at a time.

It replaced aiohttp on this path: a 16-chunk stream's c=1 p50 went from 0.49 to 0.30 ms
(``bench/upstream_clients.py``), and glmserve's CPU per streamed request at c=16 from about 1.85
to 1.33 ms (``bench/gateway_cpu.py``, 2026-12-03); the loop is CPU-bound there, so that is
throughput. What it does:

- plain HTTP and TLS, names resolved once per ``DNS_TTL_S``, every address tried in turn
  (``http_pool``); ``TCP_NODELAY``;
- ``content-length``, chunked and read-to-close bodies; ``gzip``/``deflate`` decoded should an
  upstream send them (glmserve asks for ``identity``, which keeps event streams unbuffered);
- at most ``limit`` connections per pool (callers past it wait for one); an idle connection is
  reused last-in first-out, and dropped when it has idled ``keepalive_s`` or the upstream closed it;
- a body is buffered up to ``HIGH_WATER`` bytes before the socket stops being read;
- ``Response.close()`` drops the connection at once and synchronously (a client that left);
  ``release()`` gives it back to the pool when its answer was read to the end.

Failures are ``ClientError``s. ``Disconnected.reused`` tells a stale pooled connection from a
fresh one the upstream reset, which is what ``connection`` retries on.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import zlib
from typing import Any

import httptools

HIGH_WATER = 4 * 1024 * 1024


class ClientError(Exception):
    """A request to an upstream failed; the subclass says how."""


class CannotConnect(ClientError):
    """No connection could be opened (refused, unreachable, unresolved, TLS refused)."""

    def __init__(self, address: str, os_error: OSError):
        super().__init__(f"cannot connect to {address}: {os_error.strerror or os_error}")
        self.os_error = os_error

    @property
    def refused(self) -> bool:
        return isinstance(self.os_error, ConnectionRefusedError) or self.os_error.errno == errno.ECONNREFUSED


class NameNotResolved(CannotConnect):
    pass


class TlsFailed(CannotConnect):
    pass


class Disconnected(ClientError):
    """The connection closed before the answer's head arrived."""

    def __init__(self, message: str, reused: bool):
        super().__init__(message)
        self.reused = reused


class PayloadError(ClientError):
    """The answer was malformed, or broke off before its end."""


class Response:
    """An answer whose head has arrived; its body is read with ``readany``/``read``."""

    __slots__ = (
        "_blocks",
        "_conn",
        "_done",
        "_eof",
        "_error",
        "_framed",
        "_inflate",
        "_size",
        "_waiter",
        "headers",
        "status",
    )  # fmt: skip

    def __init__(self, conn: Connection):
        self.status = 0
        self.headers: dict[str, str] = {}
        self._conn = conn
        self._blocks: list[bytes] = []
        self._size = 0
        self._eof = False
        self._error: ClientError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._done = False  # released or closed: the connection is no longer this answer's
        self._inflate: Any = None
        self._framed = False

    async def readany(self) -> bytes:
        """What has arrived of the body (waiting for something), or ``b""`` at its end."""
        while True:
            if self._blocks:
                blocks, self._blocks, self._size = self._blocks, [], 0
                self._conn.resume()
                return blocks[0] if len(blocks) == 1 else b"".join(blocks)
            if self._error is not None:
                raise self._error
            if self._eof or self._done:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def read(self) -> bytes:
        parts = []
        while block := await self.readany():
            parts.append(block)
        return b"".join(parts)

    def at_eof(self) -> bool:
        return self._eof and not self._blocks

    def release(self) -> None:
        """Back to the pool if the answer was read to its end and may be kept; else closed."""
        if self._done:
            return
        self._done = True
        self._conn.finished(reusable=self._eof and not self._blocks and self._error is None)

    def close(self) -> None:
        """Drop the connection now (a no-op once released)."""
        if self._done:
            return
        self._done = True
        self._conn.finished(reusable=False)

    # -- fed by the connection --

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _body(self, data: bytes) -> None:
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error as exc:
                self._fail(PayloadError(f"the answer's compressed body is corrupt: {exc}"))
                return
            if not data:
                return
        self._blocks.append(data)
        self._size += len(data)

    def _fail(self, error: ClientError) -> None:
        if self._error is None and not self._eof:
            self._error = error


class Connection(asyncio.Protocol):
    def __init__(self, pool: Any):  # a http_pool.Pool
        self.pool = pool
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.parser: Any = None
        self.response: Response | None = None
        self.head: asyncio.Future[Response] | None = None
        self.keep = False
        self.lost = False
        self.closed = False
        self.paused = False
        self.idle_since = 0.0

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # unasked-for bytes on an idle connection: it cannot be trusted
            self.close()
            return
        self.answered = True
        if response._eof:  # bytes past the end of the answer: the connection is not kept
            self.keep = False
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(PayloadError(f"the upstream's answer is malformed: {exc}"))
            self.close()
        if response._size > HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        response._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool.forget(self)
        response = self.response
        if response is None:
            return
        if self.head is not None and self.answered:  # a head begun, never ended: not resent
            self._head_failed(PayloadError(f"the upstream broke off its answer ({_closed(exc)})"))
        elif self.head is not None:  # not a byte of an answer
            self._head_failed(Disconnected(_closed(exc), reused=self.reused))
        elif not response._eof:
            if not response._framed and exc is None:  # a body that runs to the close
                response._eof = True
            else:
                response._fail(PayloadError(f"the upstream broke off its answer ({_closed(exc)})"))
        response._wake()

    # -- httptools callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers = self.response.headers
            headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        response.status = self.parser.get_status_code()
        if response.status < 200:  # an interim answer (100 Continue): the real one follows
            response.headers = {}
            return
        headers = response.headers
        response._framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        coding = headers.get("content-encoding", "identity").strip().lower()
        if coding in ("gzip", "x-gzip"):
            response._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            response._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        elif coding not in ("identity", ""):
            response._error = PayloadError(f"the upstream answered in an unsupported encoding {coding!r}")
        if self.head is not None and not self.head.done():
            self.head.set_result(response)
        self.head = None

    def on_body(self, body: bytes) -> None:
        if self.response is not None and self.response.status >= 200:
            self.response._body(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or response.status < 200:
            return
        if response._inflate is not None:
            rest = response._inflate.flush()
            if rest:
                response._blocks.append(rest)
                response._size += len(rest)
        self.keep = self.parser.should_keep_alive()
        response._eof = True

    # -- the pool's side --

    reused = False  # taken from the pool, not opened for this request
    answered = False  # a byte of this request's answer has arrived

    def send(self, response: Response, request: bytes, body: bytes) -> asyncio.Future[Response]:
        self.response = response
        self.parser = httptools.HttpResponseParser(self)
        self.keep = self.answered = False
        head = self.head = asyncio.get_running_loop().create_future()
        if self.lost or self.transport.is_closing():  # closed, its connection_lost still to come
            self._head_failed(Disconnected("the pooled connection was closed", reused=self.reused))
        elif len(body) < 65536:
            self.transport.write(request + body)
        else:
            self.transport.write(request)
            self.transport.write(body)
        return head

    def resume(self) -> None:
        if self.paused and not self.lost:
            self.paused = False
            self.transport.resume_reading()

    def finished(self, reusable: bool) -> None:
        """The answer is done with: the connection goes back to the pool, or is closed."""
        self.response = None
        self.head = None
        if reusable and self.keep and not self.lost and not self.paused:
            self.pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def _head_failed(self, error: ClientError) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self.head = None

    def _broken(self, error: ClientError) -> None:
        if self.head is not None:
            self._head_failed(error)
        elif self.response is not None:
            self.response._fail(error)


def _closed(exc: BaseException | None) -> str:
    return "the upstream closed the connection" if exc is None else f"{type(exc).__name__}: {exc}"
