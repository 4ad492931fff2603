"""Threads of its own for an engine's blocking calls into xllamacpp, a plain queue in front.

``loop.run_in_executor`` on a ``ThreadPoolExecutor`` costs about 0.4 ms a call on a 2-core VM
(a ``concurrent.futures.Future`` chained to an asyncio one, the pool's idle bookkeeping, two
condition variables); a ``SimpleQueue`` to a waiting thread and one ``call_soon_threadsafe``
back cost about 0.14 ms (both measured around a 5 ms blocking call). For an embedding of one
sentence (about 10 ms in llama.cpp) that difference is 2-3% of the request.

``call`` awaits its result; ``start`` returns at once, for a call that reports its own outcome
(the chat engine's generation pushes its chunks to the loop). A call whose awaiting task is
cancelled still runs to its end on its thread (llama.cpp cannot be interrupted there); its
result is dropped. After ``close`` queued calls are not started: an awaited one's caller sees
``CancelledError``, a started one's ``abandoned`` callback runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("glmserve.engine")

# (loop, future, fn, args) for ``call``; (None, abandoned, fn, args) for ``start``
_Job = tuple[Any, Any, Callable[..., Any], tuple[Any, ...]]


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.done():  # its caller was cancelled
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


def _cancel(done: asyncio.Future[Any]) -> None:
    if not done.done():
        done.cancel()


class CallThreads:
    """``count`` threads named ``name_<i>``; each runs one call at a time, in arrival order."""

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("CallThreads is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, done, fn, args))
        return await done

    def start(self, fn: Callable[..., None], *args: Any, abandoned: Callable[[], None]) -> None:
        """Run ``fn(*args)`` on a thread and return at once: ``fn`` reports its own outcome (a
        streaming engine pushes its chunks to the loop). ``abandoned`` runs instead for a call
        that ``close`` drops before it started, so its caller still hears of its end."""
        if self._closed:
            raise RuntimeError("CallThreads is closed")
        self._jobs.put((None, abandoned, fn, args))

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, done, fn, args = job
            if loop is None:  # started: ``done`` is what to do if it is dropped
                self._run_started(done, fn, args)
                continue
            if self._closed:
                self._reply(loop, _cancel, done)
                continue
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the caller, like run_in_executor does
                result, error = None, exc
            self._reply(loop, _settle, done, result, error)

    def _run_started(
        self, abandoned: Callable[[], None], fn: Callable[..., None], args: tuple[Any, ...]
    ) -> None:
        try:
            if self._closed:
                abandoned()
            else:
                fn(*args)
        except BaseException:  # ``fn`` reports its own errors; a thread must outlive its jobs
            log.exception("a call started on %s failed", threading.current_thread().name)

    @staticmethod
    def _reply(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(fn, *args)

    async def close(self) -> None:
        """Stop taking calls, cancel the queued ones, and wait for the running ones to end."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        await asyncio.to_thread(lambda: [t.join() for t in self._threads])
        while True:  # a call that raced ``close`` and queued behind the threads' ends
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                continue
            loop, done, fn, args = job
            if loop is None:
                self._run_started(done, fn, args)  # closed: its ``abandoned`` runs
            else:
                self._reply(loop, _cancel, done)
