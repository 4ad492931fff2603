"""``GET /livez`` on a port of its own (``liveness_port``), answered by a thread, not the event loop.

On the main port ``/livez`` is answered by the event loop (``http.liveness``), so its latency is
the loop's lag: while hundreds of streams keep the loop saturated, a probe there can wait a
second or more behind them and a strict probe would restart a replica that is only busy. Here a
thread answers instead; it says ``alive`` (200) while the event loop has turned within
``stall_s`` (a heartbeat task stamps the time every ``TICK_S``), and ``stalled`` (503) once it
has not, which is what liveness should mean: the process can still serve, however busy it is.
The thread needs the GIL only for a few microseconds per probe, so a busy loop delays it by at
most a few of Python's switch intervals (5 ms each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time

log = logging.getLogger("glmserve.http.liveness_port")
TICK_S = 0.25
STALL_S = 10.0
_ALIVE = b'{"status":"alive"}'
_STALLED = b'{"status":"stalled"}'
_MAX_REQUEST = 8192


def _response(status: str, body: bytes, head: bool) -> bytes:
    lines = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "cache-control: no-store\r\nconnection: close\r\n\r\n"
    )
    return lines.encode("ascii") + (b"" if head else body)


class LivenessPort:
    def __init__(self, host: str, port: int, *, stall_s: float = STALL_S) -> None:
        self._stall_s = stall_s
        self._tick = time.monotonic()
        self._sock = socket.create_server((host, port), reuse_port=False)
        self._sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="glmserve-livez", daemon=True)
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        self._thread.start()

    async def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await asyncio.to_thread(self._thread.join, 2.0)
        self._sock.close()

    async def _beat(self) -> None:
        while True:
            self._tick = time.monotonic()
            await asyncio.sleep(TICK_S)

    def alive(self) -> bool:
        return time.monotonic() - self._tick < self._stall_s

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    continue

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < _MAX_REQUEST:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        method, _, rest = request.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        head = method == b"HEAD"
        if method not in (b"GET", b"HEAD") or path != b"/livez":
            conn.sendall(_response("404 Not Found", b'{"error":"only GET /livez here"}', head))
        elif self.alive():
            conn.sendall(_response("200 OK", _ALIVE, head))
        else:
            conn.sendall(_response("503 Service Unavailable", _STALLED, head))
