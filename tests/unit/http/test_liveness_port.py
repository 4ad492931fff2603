"""liveness_port.py: /livez from a thread says alive while the event loop turns, stalled once it stops."""

from __future__ import annotations

import asyncio
import time

import httpx

from glmserve.http.liveness_port import LivenessPort


def get(port: int, path: str = "/livez") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def test_alive_while_the_loop_turns_stalled_while_it_is_blocked() -> None:
    async def main() -> None:
        livez = LivenessPort("127.0.0.1", 0, stall_s=0.4)
        livez.start()
        try:
            await asyncio.sleep(0.05)
            alive = await asyncio.to_thread(get, livez.port)
            assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
            # Block the loop itself (as a runaway synchronous call would): the thread still answers.
            time.sleep(0.6)
            started = time.monotonic()
            stalled = get(livez.port)
            assert time.monotonic() - started < 1.0, "answered without the loop"
            assert (stalled.status_code, stalled.json()) == (503, {"status": "stalled"})
            # The loop turns again: the heartbeat catches up (within a deadline a loaded machine meets).
            deadline = time.monotonic() + 5
            while (again := await asyncio.to_thread(get, livez.port)).status_code != 200:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert again.status_code == 200
            assert (await asyncio.to_thread(get, livez.port, "/health")).status_code == 404
        finally:
            await livez.close()

    asyncio.run(main())
