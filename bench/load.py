"""Load generation: N streamed requests at a fixed concurrency, and one multi-turn conversation.

Every chunk is timestamped on arrival (``time.perf_counter``). A request counts as failed when its
transport raised, an error chunk arrived, or the stream ended without a ``finish_reason``, and
when glmserve answered it from its response cache (``x-cache: HIT``): the benchmark measures
generation, and the response's ``x-cache`` header is recorded with every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import prompts
from transports import Chunk, Transport, TransportError


@dataclass
class RequestResult:
    started: float
    ended: float = 0.0
    token_times: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    x_cache: str | None = None  # glmserve's x-cache header; None: absent (cache off, or not glmserve)

    @property
    def ok(self) -> bool:
        return self.error is None and self.finish_reason is not None

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.started if self.token_times else None

    @property
    def tokens(self) -> int:
        """Completion tokens from usage; the number of content deltas where a server sent none."""
        return self.completion_tokens if self.completion_tokens is not None else len(self.token_times)

    def on_chunk(self, chunk: Chunk) -> None:
        now = time.perf_counter()
        if "error" in chunk:
            self.error = f"error chunk: {str(chunk['error'])[:300]}"
            return
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if content := delta.get("content"):
                self.token_times.append(now)
                self.text += content
            if reason := choice.get("finish_reason"):
                self.finish_reason = reason
        if usage := chunk.get("usage"):
            self._read_usage(usage)

    def _read_usage(self, usage: dict[str, Any]) -> None:
        self.prompt_tokens = usage.get("prompt_tokens")
        self.completion_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details") or {}
        self.cached_tokens = details.get("cached_tokens")

    def record(self) -> dict[str, Any]:
        """The per-request figures kept in the JSON results."""
        return {
            "ok": self.ok,
            "error": self.error,
            "finish_reason": self.finish_reason,
            "ttft_s": self.ttft,
            "duration_s": self.ended - self.started,
            "content_deltas": len(self.token_times),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "x_cache": self.x_cache,
        }


@dataclass
class LevelRun:
    level: int
    wall_s: float
    results: list[RequestResult]


def send(transport: Transport, body: dict[str, Any]) -> RequestResult:
    result = RequestResult(started=time.perf_counter())
    try:
        result.x_cache = transport.stream(body, result.on_chunk).get("x-cache")
    except TransportError as exc:
        result.error = str(exc)
    result.ended = time.perf_counter()
    if result.error is None and result.finish_reason is None:
        result.error = "stream ended before finish_reason"
    if result.error is None and (result.x_cache or "").upper() == "HIT":
        result.error = "answered from glmserve's response cache (x-cache: HIT), not generated"
    return result


def run_level(
    transport: Transport, level: int, requests: int, max_tokens: int, on_done: Callable[[], object]
) -> LevelRun:
    """``requests`` requests with at most ``level`` in flight; wall time runs first send to last end."""
    bodies = [prompts.load_body(level, i, max_tokens) for i in range(requests)]
    pool = ThreadPoolExecutor(max_workers=level, thread_name_prefix=f"load-c{level}")
    try:
        start = time.perf_counter()
        futures = [pool.submit(send, transport, body) for body in bodies]
        for future in futures:
            future.add_done_callback(lambda _: on_done())
        results = [future.result() for future in futures]
    finally:
        # On an interrupt, do not wait here for streams in flight: stopping the server ends them.
        pool.shutdown(wait=False, cancel_futures=True)
    end = max((r.ended for r in results), default=start)
    return LevelRun(level, end - start, results)


def run_conversation(
    transport: Transport, turns: int, max_tokens: int, items: int, on_done: Callable[[], object]
) -> list[RequestResult]:
    """One conversation; each turn re-sends the whole history plus the reply it got."""
    messages = prompts.first_turn(items)
    results: list[RequestResult] = []
    for turn in range(1, turns + 1):
        if turn > 1:
            messages += [{"role": "assistant", "content": results[-1].text}, prompts.follow_up(turn)]
        results.append(send(transport, prompts.chat_body(list(messages), max_tokens)))
        on_done()
        if not results[-1].ok:
            break
    return results


def warm_up(transport: Transport) -> RequestResult:
    """One short request so that the first measured request does not pay for lazy start-up."""
    body = prompts.chat_body([{"role": "user", "content": "Say hello."}], 8)
    return send(transport, body)
