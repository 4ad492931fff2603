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
    """Run ``work``; cancel it and raise ``ClientGone`` if the client disconnects first.

    The watcher's end cancels the work through a done callback, so the common case (the work
    ends first) costs two tasks and no ``asyncio.wait``.
    """
    loop = asyncio.get_running_loop()  # once: on Python 3.11 each lookup is a getpid() syscall
    task, watch = loop.create_task(work), loop.create_task(gone())
    left = False

    def on_gone(done: asyncio.Future[None]) -> None:
        nonlocal left
        if done.cancelled():
            return
        done.exception()  # retrieved: a watcher that failed counts as a client gone
        if not task.done():
            left = True
            task.cancel()

    watch.add_done_callback(on_gone)
    try:
        return await task  # a cancelled caller cancels the task too
    except asyncio.CancelledError:
        if left:
            raise ClientGone from None
        raise
    finally:
        watch.remove_done_callback(on_gone)
        watch.cancel()
