"""disconnect.py: ``unless_gone`` returns the work's result, or cancels the work and raises
``ClientGone`` when the client leaves first; a cancelled caller cancels the work too."""

from __future__ import annotations

import asyncio

import pytest

from glmserve.http.disconnect import ClientGone, unless_gone


def test_the_work_ends_first() -> None:
    async def main() -> tuple[int, bool]:
        never = asyncio.Event()

        async def gone() -> None:
            await never.wait()

        async def work() -> int:
            await asyncio.sleep(0.01)
            return 42

        result = await unless_gone(work(), gone)
        await asyncio.sleep(0)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return result, bool(pending)

    result, pending = asyncio.run(main())
    assert result == 42
    assert not pending, "the watcher outlived the work"


@pytest.mark.parametrize("how", ["returns", "raises"])
def test_the_client_leaves_first(how: str) -> None:
    async def main() -> tuple[bool, bool]:
        stopped = asyncio.Event()

        async def gone() -> None:
            await asyncio.sleep(0.01)
            if how == "raises":
                raise RuntimeError("the server's receive failed")

        async def work() -> int:
            try:
                await asyncio.sleep(10)
            finally:
                stopped.set()
            return 1

        with pytest.raises(ClientGone):
            await unless_gone(work(), gone)
        return stopped.is_set(), True

    stopped, _ = asyncio.run(main())
    assert stopped, "the work went on after the client left"


def test_a_cancelled_caller_cancels_the_work() -> None:
    async def main() -> bool:
        stopped = asyncio.Event()

        async def gone() -> None:
            await asyncio.Event().wait()

        async def work() -> None:
            try:
                await asyncio.sleep(10)
            finally:
                stopped.set()

        caller = asyncio.ensure_future(unless_gone(work(), gone))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        return stopped.is_set()

    assert asyncio.run(main())
