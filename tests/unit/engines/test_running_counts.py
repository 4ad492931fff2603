"""Running token counts (``Progress``) where an engine knows them as it streams.

The embedded engine reads llama.cpp's per-token timings (chat, and legacy completions, whose
prompts add up); vLLM and SGLang upstreams are asked for continuous usage; thinking emulation
adds up its two phases; the response cache keeps none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from glmserve.caching.cache import ResponseCache
from glmserve.caching.store import MemoryStore
from glmserve.config.cache import CacheSettings
from glmserve.engines.base import (
    CompletionJob,
    CompletionText,
    Event,
    Finish,
    Generation,
    Progress,
    Sampling,
    Text,
    Usage,
)
from glmserve.engines.llamacpp import completions
from glmserve.engines.llamacpp.translate import to_events, to_request
from glmserve.engines.thinking import think_then_answer
from glmserve.engines.upstream.dialects import OpenAIDialect
from glmserve.engines.upstream.request import request_body
from glmserve.engines.upstream.sse import SseEvent

GEN = Generation(messages=[{"role": "user", "content": "hi"}], sampling=Sampling(0.0, 1.0))


def llama_chunk(content: str | None, timings: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The shape xllamacpp streams with ``timings_per_token`` (captured from the 0.5B)."""
    chunk: dict[str, Any] = {
        "choices": [{"finish_reason": None, "index": 0, "delta": {"content": content}}],
        "object": "chat.completion.chunk",
        **extra,
    }
    if timings is not None:
        chunk["timings"] = {"prompt_ms": 14.0, "predicted_ms": 30.0, **timings}
    return chunk


def test_the_embedded_engine_asks_for_per_token_timings() -> None:
    assert to_request(GEN)["timings_per_token"] is True


def test_llama_cpp_timings_are_a_running_count_before_the_delta() -> None:
    # A second identical request: 32 of the 33 prompt tokens came from the prompt cache.
    events = to_events(llama_chunk("Sure", {"cache_n": 32, "prompt_n": 1, "predicted_n": 4}))
    assert events == [Progress(33, 4, cached_tokens=32), Text("Sure")]
    assert to_events(llama_chunk(None)) == [], "the role chunk carries no timings and no count"


def test_the_final_usage_chunk_is_usage_not_progress() -> None:
    usage = {"completion_tokens": 4, "prompt_tokens": 33, "prompt_tokens_details": {"cached_tokens": 32}}
    final = {"choices": [], "usage": usage, "timings": {"cache_n": 32, "prompt_n": 1, "predicted_n": 4}}
    assert to_events(final) == [Usage(33, 4, cached_tokens=32)]


def test_legacy_completions_add_up_the_running_counts_of_their_prompts() -> None:
    """Two prompts streamed interleaved (the shape handle_completions gives with timings)."""

    def piece(index: int, text: str, prompt: int, predicted: int, **extra: Any) -> dict[str, Any]:
        timings = {"cache_n": 0, "prompt_n": prompt, "predicted_n": predicted}
        return {
            "choices": [{"index": index, "text": text, "finish_reason": None}],
            "timings": timings,
            **extra,
        }

    usage = {"completion_tokens": 2, "prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 0}}
    chunks = [piece(1, " covered", 3, 1), piece(0, " a", 2, 1), piece(1, " with", 3, 2, usage=usage), None]

    async def run() -> list[Event]:
        async def decoded() -> AsyncIterator[Any]:
            for chunk in chunks:
                for item in completions.to_chunks(chunk):
                    yield item

        return [ev async for ev in completions.events(decoded())]

    events = asyncio.run(run())
    assert [ev for ev in events if isinstance(ev, Progress)] == [
        Progress(3, 1),
        Progress(5, 2),
        Progress(5, 3),
    ]
    assert events[0] == Progress(3, 1) and events[1] == CompletionText(1, " covered")
    assert events[-1] == Usage(3, 2), "the final usage sums the prompts that reported one"
    assert completions.to_request(CompletionJob(["x"], GEN.sampling))["timings_per_token"] is True


def test_vllm_and_sglang_are_asked_for_continuous_usage_others_not() -> None:
    for kind in ("vllm", "sglang"):
        assert request_body(GEN, kind, "m")["stream_options"] == {
            "include_usage": True,
            "continuous_usage_stats": True,
        }
    for kind in ("openai", "llamacpp", "ollama"):
        assert request_body(GEN, kind, "m")["stream_options"] == {"include_usage": True}


def sse(payload: dict[str, Any]) -> SseEvent:
    import orjson

    return SseEvent(event=None, data=orjson.dumps(payload))


def test_continuous_usage_is_a_progress_before_each_chunks_deltas() -> None:
    def usage(prompt: int, completion: int) -> dict[str, int]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}], "usage": usage(9, 0)},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}], "usage": usage(9, 1)},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}], "usage": usage(9, 2)},
    ]
    vllm = OpenAIDialect("vllm", "bearer").stream("d")
    events = [ev for c in chunks for ev in vllm.feed(sse(c)) or []]
    # The role chunk makes no event, so the first event is still the first delta.
    assert events == [Progress(9, 1), Text("Hel"), Progress(9, 2), Text("lo")]
    plain = OpenAIDialect("openai", "bearer").stream("d")
    assert [ev for c in chunks for ev in plain.feed(sse(c)) or []] == [Text("Hel"), Text("lo")]


class TwoPhases:
    name = "two-phases"

    def __init__(self, *phases: list[Event]) -> None:
        self.phases = list(phases)

    async def stream(self, generation: Generation) -> AsyncIterator[Event]:
        for ev in self.phases.pop(0):
            yield ev

    async def close(self) -> None:
        pass


def test_emulated_thinking_counts_both_phases_as_it_goes() -> None:
    think = [Progress(10, 1), Text("a"), Progress(10, 2), Text("b"), Finish("stop"), Usage(10, 2)]
    answer = [Progress(14, 1), Text("x"), Finish("stop"), Usage(14, 1)]

    async def run() -> list[Event]:
        return [ev async for ev in think_then_answer(TwoPhases(think, answer), GEN)]

    counts = [ev for ev in asyncio.run(run()) if isinstance(ev, Progress | Usage)]
    assert counts == [
        Progress(10, 1, reasoning_tokens=1),
        Progress(10, 2, reasoning_tokens=2),
        Progress(10, 3, reasoning_tokens=2),  # the answer's first token, after two of reasoning
        Usage(10, 3, reasoning_tokens=2),
    ]


def test_the_cache_keeps_a_generation_without_its_running_counts() -> None:
    events: list[Event] = [Progress(3, 1), Text("a"), Progress(3, 2), Text("b"), Finish("stop"), Usage(3, 2)]

    async def run() -> tuple[list[Event], list[Event] | None]:
        store = MemoryStore(8)
        cache = ResponseCache(CacheSettings(), store)

        async def generate() -> AsyncIterator[Event]:
            for ev in events:
                yield ev

        gen = Generation(messages=GEN.messages, sampling=Sampling(0.0, 1.0))
        lookup = await cache.open(model="m", generation=gen, scope="k", cache_control=None, generate=generate)
        live = [ev async for ev in lookup.events]
        for _ in range(1000):  # the flight stores its events once it has ended
            if cache.stats.stores:
                break
            await asyncio.sleep(0)
        replay = await cache.open(model="m", generation=gen, scope="k", cache_control=None, generate=generate)
        assert replay.status == "HIT"
        return live, [ev async for ev in replay.events]

    live, replayed = asyncio.run(run())
    assert live == events, "a live subscriber sees the running counts"
    assert replayed == [Text("a"), Text("b"), Finish("stop"), Usage(3, 2)]
