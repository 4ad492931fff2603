"""CallThreads: blocking calls on threads of their own, results and errors back on the loop."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from glmserve.engines.llamacpp.call_threads import CallThreads


def in_a_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@in_a_loop
async def test_result_comes_back_from_a_named_thread_of_its_own() -> None:
    threads = CallThreads(2, "embed-x")
    try:
        name = await threads.call(lambda: threading.current_thread().name)
        assert name.startswith("embed-x_")
        assert name != threading.current_thread().name
        assert await threads.call(lambda a, b: a + b, 2, 3) == 5
    finally:
        await threads.close()


@in_a_loop
async def test_an_error_reaches_the_caller_with_its_type() -> None:
    threads = CallThreads(1, "t")

    def fail() -> None:
        raise ValueError("bad input")

    try:
        with pytest.raises(ValueError, match="bad input"):
            await threads.call(fail)
        assert await threads.call(lambda: "still serving") == "still serving"
    finally:
        await threads.close()


@in_a_loop
async def test_calls_run_side_by_side_up_to_the_thread_count_and_the_loop_stays_free() -> None:
    threads = CallThreads(2, "t")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        started = time.perf_counter()
        await asyncio.gather(threads.call(time.sleep, 0.3), threads.call(time.sleep, 0.3))
        two = time.perf_counter() - started
        started = time.perf_counter()
        await asyncio.gather(*(threads.call(time.sleep, 0.2) for _ in range(3)))
        three = time.perf_counter() - started
    finally:
        ticker.cancel()
        await threads.close()
    assert two < 0.55  # side by side, not 0.6 s one after the other
    assert three >= 0.4  # a third call waits for a free thread
    assert ticks >= 40  # the loop ran while the calls blocked their threads


@in_a_loop
async def test_a_cancelled_caller_drops_the_result_and_the_thread_serves_the_next() -> None:
    threads = CallThreads(1, "t")
    finished = threading.Event()

    def slow() -> str:
        time.sleep(0.2)
        finished.set()
        return "late"

    try:
        task = asyncio.create_task(threads.call(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await threads.call(lambda: "next") == "next"
        assert finished.is_set()  # the cancelled call ran to its end before the next one
    finally:
        await threads.close()


@in_a_loop
async def test_close_cancels_queued_calls_and_refuses_new_ones() -> None:
    threads = CallThreads(1, "t")
    running = asyncio.ensure_future(threads.call(time.sleep, 0.2))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(threads.call(lambda: "never"))
    await asyncio.sleep(0)
    await threads.close()
    await running  # the running call ends normally
    with pytest.raises(asyncio.CancelledError):
        await queued
    with pytest.raises(RuntimeError, match="closed"):
        await threads.call(lambda: None)


@in_a_loop
async def test_a_call_that_races_close_is_cancelled_not_left_waiting() -> None:
    threads = CallThreads(1, "t")
    running = asyncio.ensure_future(threads.call(time.sleep, 0.2))
    await asyncio.sleep(0.05)
    closing = asyncio.ensure_future(threads.close())
    await asyncio.sleep(0)  # close has queued the threads' ends and waits for them
    threads._closed = False  # a caller that looked before close did queues behind those ends
    late = asyncio.ensure_future(threads.call(lambda: "never"))
    await closing
    await running
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(late, 2)


@in_a_loop
async def test_a_started_call_runs_on_a_thread_and_reports_through_its_own_channel() -> None:
    threads = CallThreads(2, "chat-x")
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[str] = asyncio.Queue()

    def generate(prefix: str) -> None:
        for i in range(3):
            loop.call_soon_threadsafe(got.put_nowait, f"{prefix}{i}:{threading.current_thread().name}")

    try:
        threads.start(generate, "c", abandoned=lambda: None)  # returns before the call has run
        items = [await asyncio.wait_for(got.get(), 2) for _ in range(3)]
    finally:
        await threads.close()
    assert [i.split(":")[0] for i in items] == ["c0", "c1", "c2"]
    assert all(i.split(":")[1].startswith("chat-x_") for i in items)


@in_a_loop
async def test_close_runs_abandoned_for_a_started_call_it_drops_and_a_failure_keeps_the_thread() -> None:
    threads = CallThreads(1, "t")
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("a bug in the started call")

    threads.start(fail, abandoned=lambda: ran.append("abandoned fail"))
    threads.start(time.sleep, 0.2, abandoned=lambda: ran.append("abandoned sleep"))
    await asyncio.sleep(0.05)  # fail ran (and was logged), the sleep runs
    threads.start(lambda: ran.append("ran"), abandoned=lambda: ran.append("abandoned"))
    await threads.close()
    assert ran == ["abandoned"]  # queued behind the sleep when close came: told, not run
    with pytest.raises(RuntimeError, match="closed"):
        threads.start(lambda: None, abandoned=lambda: None)
