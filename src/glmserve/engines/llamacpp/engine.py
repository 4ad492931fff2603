"""The embedded engine: one xllamacpp ``Server`` per GGUF, bridged to asyncio.

xllamacpp runs llama.cpp's own server loop (continuous batching over parallel slots, prompt
cache) in its own thread; ``handle_chat_completions`` blocks its caller and reports each chunk
through a callback whose ``True`` return ends the generation. Each request therefore runs the
blocking call on a worker thread and receives chunks on its own asyncio queue; cancelling is a
flag the callback reads, so a closed stream stops at the next token.

``complete`` continues raw prompts (legacy completions) through ``handle_completions`` on the
same slots.

Admission: a request is handed to llama.cpp only when one of its slots is free. Until then it
waits on an asyncio semaphore, in a queue bounded by ``max_waiting``; past that it is refused
with 429 ``1302``. A waiting request that is cancelled simply leaves the queue; llama.cpp never
sees it and running generations are untouched.

Each chunk carries llama.cpp's per-token timings (``timings_per_token``), which become a
``Progress`` before the chunk's deltas, so a stream its consumer closes early is metered up to
its last event read, without the final usage (tokens still queued unread when it closed are not
counted; the worker stops at the next one).

For the batch worker (``jobs.service.spare_capacity``) the engine counts the generations in
llama.cpp (``in_flight``), those before their first chunk (``prefilling``), and says whether one
is about to reach its ``max_tokens`` (``ending_within``: each chunk is about one token).

Counting a prompt (``count_prompt_tokens``, ``prompt_tokens``), the text a model wrote
(``count_text_tokens``) and ``tokenize``/``detokenize`` need no slot: llama.cpp's own HTTP
listener (loopback only, behind a per-process key: see ``loopback.py``) renders the request's
prompt (``/apply-template``, the same body a generation gets) and tokenizes it (``/tokenize``)
as a generation's prompt is tokenized.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from glmserve.config.settings import EngineSettings
from glmserve.engines.base import CompletionJob, Event, Generation
from glmserve.engines.llamacpp import completions, translate
from glmserve.engines.llamacpp.call_threads import CallThreads
from glmserve.engines.llamacpp.loopback import Loopback
from glmserve.errors import EngineError, RateLimited

_END = object()


class _Budget:
    """A generation's ``max_tokens`` (None: none set) and the chunks it has produced so far."""

    __slots__ = ("limit", "produced")

    def __init__(self, limit: Any) -> None:
        self.limit = limit if isinstance(limit, int) and limit > 0 else None
        self.produced = 0


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
        self.context_per_slot = cfg.ctx_per_slot
        params = _params(path, cfg, mmproj)
        self.loopback = Loopback.attach(params)
        self._server = xllamacpp.Server(params)
        self.loopback.bind(self._server)
        self._threads = CallThreads(cfg.parallel, f"llama-{name}")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._prefilling = 0
        self._budgets: set[_Budget] = set()
        self.slots = cfg.parallel
        self.max_waiting = cfg.max_waiting
        self._free = asyncio.Semaphore(cfg.parallel)
        self.waiting = 0

    @property
    def in_flight(self) -> int:
        """Generations running inside llama.cpp right now."""
        return self._in_flight

    @property
    def prefilling(self) -> int:
        """Generations in llama.cpp that have not produced their first chunk yet."""
        return self._prefilling

    def ending_within(self, tokens: int) -> bool:
        """Whether a generation in llama.cpp has fewer than ``tokens`` tokens left before its
        ``max_tokens`` (its client's next request, if it sends one at once, is close)."""
        with self._lock:
            budgets = list(self._budgets)
        return any(b.limit is not None and b.limit - b.produced < tokens for b in budgets)

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

    def _run(self, handler: Any, body: dict[str, Any], push: Any, cancelled: threading.Event) -> None:
        prefilled = threading.Event()
        budget = _Budget(body.get("max_tokens"))

        def first_chunk() -> None:
            with self._lock:
                if not prefilled.is_set():
                    prefilled.set()
                    self._prefilling -= 1

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if not prefilled.is_set():
                first_chunk()
            budget.produced += 1
            if cancelled.is_set():
                return True
            push(chunk)
            return False

        with self._lock:
            self._in_flight += 1
            self._prefilling += 1
            self._budgets.add(budget)
        try:
            handler(body, on_chunk)
        except Exception as exc:  # llama.cpp raises on malformed bodies; hand it to the reader
            push(EngineError(f"llama.cpp rejected the request: {exc}"))
        finally:
            first_chunk()
            with self._lock:
                self._in_flight -= 1
                self._budgets.discard(budget)

    def stream(self, generation: Generation) -> AsyncIterator[Event]:
        chat = self._server.handle_chat_completions
        top = generation.logprobs or 0
        return self._generate(
            chat, lambda: translate.to_request(generation), lambda c: translate.to_events(c, top)
        )

    def complete(self, job: CompletionJob) -> AsyncIterator[Event]:
        """Legacy completions: each prompt continued as it is (no chat template)."""
        raw, top = self._server.handle_completions, job.logprobs or 0
        chunks = self._generate(
            raw, lambda: completions.to_request(job), lambda c: completions.to_chunks(c, top)
        )
        return completions.events(chunks)

    async def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return await self.loopback.tokenize(text, add_special)

    async def detokenize(self, tokens: list[int]) -> str:
        return await self.loopback.detokenize(tokens)

    async def prompt_tokens(self, generation: Generation) -> list[int]:
        """The prompt ``generation`` is charged for: its chat-template rendering, tokenized."""
        body = translate.to_request(generation)
        for key in ("stream", "stream_options", "verbose", "timings_per_token"):
            body.pop(key, None)
        prompt = await self.loopback.apply_template(body)
        return await self.loopback.tokenize(prompt, add_special=True)

    async def _generate(
        self,
        handler: Any,
        request: Callable[[], dict[str, Any]],
        decode: Callable[[dict[str, Any]], list[Any]],
    ) -> AsyncIterator[Any]:
        """``handler``'s chunks decoded; ``request`` builds the body at the first ``anext`` (its
        errors, like an engine's, are raised there)."""
        body = request()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def push(item: Any) -> None:
            if not loop.is_closed():  # at shutdown a worker may outlive the loop
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def finish() -> None:
            # The slot first, then the end: the loop runs them in this order, so a caller that
            # has seen the end finds the slot free. (The other way round, a caller whose loop
            # closed on the end, as each ``asyncio.run`` does, could lose the release and the
            # next generation would wait for a slot forever.)
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._free.release)
            push(_END)

        def run() -> None:
            try:
                self._run(handler, body, push, cancelled)
            finally:
                finish()

        def abandoned() -> None:
            push(EngineError("the engine closed before this generation started"))
            finish()

        await self._admit()
        try:
            self._threads.start(run, abandoned=abandoned)
        except RuntimeError:  # the engine closed while this request waited for its slot
            self._free.release()
            raise EngineError("the engine is closed") from None
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                for event in decode(item):
                    yield event
        finally:
            cancelled.set()

    async def count_prompt_tokens(self, generation: Generation) -> int:
        """The prompt tokens a generation of ``generation`` reports, without generating."""
        return len(await self.prompt_tokens(generation))

    async def count_text_tokens(self, text: str) -> int:
        """The tokens of text this model wrote (no special tokens added)."""
        return len(await self.loopback.tokenize(text, add_special=False))

    async def close(self) -> None:
        await self.loopback.close()
        await self._threads.close()
