"""The embedded engine: one xllamacpp ``Server`` per GGUF, bridged to asyncio.

xllamacpp runs llama.cpp's own server loop (continuous batching over parallel slots, prompt
cache) in its own thread; ``handle_chat_completions`` blocks its caller and reports each chunk
through a callback whose ``True`` return ends the generation. Each request therefore runs the
blocking call on a worker thread and receives chunks on its own asyncio queue; cancelling is a
flag the callback reads, so a closed stream stops at the next token.

Admission: a request is handed to llama.cpp only when one of its slots is free. Until then it
waits on an asyncio semaphore, in a queue bounded by ``max_waiting``; past that it is refused
with 429 ``1302``. A waiting request that is cancelled simply leaves the queue; llama.cpp never
sees it and running generations are untouched.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from glmserve.config.settings import EngineSettings
from glmserve.engines.base import Event, Generation
from glmserve.engines.llamacpp import translate
from glmserve.errors import EngineError, RateLimited

_END = object()


def _params(path: Path, cfg: EngineSettings, mmproj: Path | None = None) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    if mmproj is not None:  # llama.cpp's server then takes image_url parts (data URLs)
        params.mmproj.path = str(mmproj)
    params.n_parallel = cfg.parallel
    params.n_ctx = cfg.parallel * cfg.ctx_per_slot
    params.cpuparams.n_threads = cfg.threads
    params.cpuparams_batch.n_threads = cfg.batch_threads
    params.verbosity = -1
    params.warmup = True
    return params


class LlamaCppEngine:
    """Serves one GGUF file; thread-safe, shared by every model name that maps to it."""

    def __init__(self, name: str, path: Path, cfg: EngineSettings, mmproj: Path | None = None):
        import xllamacpp

        self.name = name
        self.path = path
        self._server = xllamacpp.Server(_params(path, cfg, mmproj))
        self._pool = ThreadPoolExecutor(cfg.parallel, thread_name_prefix=f"llama-{name}")
        self._lock = threading.Lock()
        self._in_flight = 0
        self.slots = cfg.parallel
        self.max_waiting = cfg.max_waiting
        self._free = asyncio.Semaphore(cfg.parallel)
        self.waiting = 0

    @property
    def in_flight(self) -> int:
        """Generations running inside llama.cpp right now."""
        return self._in_flight

    async def _admit(self) -> None:
        if self._free.locked() and self.waiting >= self.max_waiting:
            raise RateLimited(
                f"model is busy: {self.slots} requests running and {self.waiting} waiting; retry shortly",
                retry_after=1,
            )
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1

    def _run(self, body: dict[str, Any], push: Any, cancelled: threading.Event) -> None:
        def on_chunk(chunk: dict[str, Any]) -> bool:
            if cancelled.is_set():
                return True
            push(chunk)
            return False

        with self._lock:
            self._in_flight += 1
        try:
            self._server.handle_chat_completions(body, on_chunk)
        except Exception as exc:  # llama.cpp raises on malformed bodies; hand it to the reader
            push(EngineError(f"llama.cpp rejected the request: {exc}"))
        finally:
            with self._lock:
                self._in_flight -= 1
            push(_END)

    async def stream(self, generation: Generation) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def push(item: Any) -> None:
            if not loop.is_closed():  # at shutdown a worker may outlive the loop
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> None:
            try:
                self._run(body, push, cancelled)
            finally:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self._free.release)

        body = translate.to_request(generation)
        await self._admit()
        loop.run_in_executor(self._pool, run)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                for event in translate.to_events(item):
                    yield event
        finally:
            cancelled.set()

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
