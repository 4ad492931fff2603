"""coalesced_writes.py: a loop turn's writes go out as one, in order; and on a real uvicorn
server a whole JSON response, head and body, is one write of the socket's transport."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from glmserve.http.coalesced_writes import CoalescingTransport, HttpToolsCoalescing


class Recording:
    """The loop's transport, as far as the coalescer uses it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_a_write_waits_for_the_next_of_its_turn_or_the_turns_end() -> None:
    async def main() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
        inner = Recording()
        out = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        out.write(b"HTTP/1.1 200 OK\r\n\r\n")
        out.write(b"")
        held = list(inner.writes)
        out.write(b"body")  # the second write of the turn: both at once
        paired = list(inner.writes)
        out.writelines([b"a", b"b", b"c"])  # a+b together; c waits for the turn's end
        three = list(inner.writes)
        await asyncio.sleep(0)
        return held, paired, three, inner.writes

    held, paired, three, every = asyncio.run(main())
    assert held == [], "a lone write waits"
    assert paired == [b"HTTP/1.1 200 OK\r\n\r\nbody"], "head and body go out together, at once"
    assert three == [*paired, b"ab"]
    assert every == [*paired, b"ab", b"c"], "the turn's end sends the write left alone"


def test_close_sends_what_is_held_and_nothing_is_written_after_it() -> None:
    async def main() -> tuple[list[bytes], bool, int]:
        inner = Recording()
        out = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        out.write(b"tail")
        out.close()
        closed_with = list(inner.writes)
        out.write(b"late")  # after close: dropped, never written to a closed transport
        await asyncio.sleep(0)
        return closed_with, inner.closed, len(inner.writes)

    closed_with, closed, count = asyncio.run(main())
    assert closed_with == [b"tail"] and closed
    assert count == 1


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = b'{"answer": 42}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _exchange(port: int, requests: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        received = b""
        for n in range(requests):
            sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            while received.count(b'{"answer": 42}') <= n:
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection"
                received += chunk
        return received


def test_a_real_server_writes_each_response_once_and_keeps_the_connection() -> None:
    async def main() -> tuple[bytes, list[bytes]]:
        config = uvicorn.Config(_app, host="127.0.0.1", port=0, http=HttpToolsCoalescing, lifespan="off",
                                log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        writes: list[bytes] = []
        original = CoalescingTransport.flush

        def counted(self: CoalescingTransport) -> None:
            writes.extend(self._held and [b"".join(self._held)])
            original(self)

        CoalescingTransport.flush = counted  # type: ignore[method-assign]
        try:
            received = await asyncio.to_thread(_exchange, port, 2)
        finally:
            CoalescingTransport.flush = original  # type: ignore[method-assign]
            server.should_exit = True
            await serving
        return received, writes

    received, writes = asyncio.run(main())
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2, received
    assert len(writes) == 2, f"one write per response, head and body together: {writes}"
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b'{"answer": 42}')
