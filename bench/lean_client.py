"""A minimal keep-alive HTTP/1.1 client on httptools, for ``bench/upstream_clients.py`` only.

It measures how much of aiohttp's cost on glmserve's upstream path a lean client would save. It is
not glmserve's client: plain HTTP only, no TLS, no retries of stale connections, no timeouts, and
errors are bare. It has one pool per host, one request per connection at a time, and a streamed
body handed over once per socket read (whatever HTTP chunks that read held), the way the
upstream engine reads blocks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httptools


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.blocks: list[bytes] = []
        self.done = False
        self.wake: asyncio.Future[None] | None = None
        self.lost = False
        self.keep = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # as aiohttp does: a request is never held back behind an ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        if self.wake is not None and not self.wake.done() and (self.blocks or self.done):
            self.wake.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.done = True
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.blocks.append(body)

    def on_message_complete(self) -> None:
        self.keep = self.parser.should_keep_alive()
        self.done = True


class LeanPool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_Connection] = []

    async def stream(self, path: str, body: bytes) -> AsyncIterator[bytes]:
        """POST ``body`` to ``path``; the response body's bytes, a socket read at a time."""
        loop = asyncio.get_running_loop()
        if self._idle:
            conn = self._idle.pop()
        else:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        conn.done, conn.keep, conn.blocks = False, False, []
        conn.parser = httptools.HttpResponseParser(conn)
        head = f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
        conn.transport.write(head.encode() + b"content-length: %d\r\n\r\n" % len(body) + body)
        while True:
            if not conn.blocks and not conn.done:
                conn.wake = loop.create_future()
                await conn.wake
            if conn.blocks:
                block = b"".join(conn.blocks) if len(conn.blocks) > 1 else conn.blocks[0]
                conn.blocks = []
                yield block
            if conn.done and not conn.blocks:
                break
        if conn.keep and not conn.lost:
            self._idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
