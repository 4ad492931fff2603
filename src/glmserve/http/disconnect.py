"""Stop work for a client that has gone away, even before the response has started."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed the connection while its request was waiting or running."""


def watcher(receive: Receive) -> Callable[[], Awaitable[None]]:
    """A waiter that returns once the client disconnects (the body must already be read)."""

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait


async def unless_gone(work: Coroutine[Any, Any, T], gone: Callable[[], Awaitable[None]]) -> T:
    """Run ``work``; cancel it and raise ``ClientGone`` if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise ClientGone
