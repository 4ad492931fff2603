"""Think-then-answer for models without native reasoning.

The model first writes its reasoning (after a ``<think>`` prefill, stopped at ``</think>`` or a
token budget, so the segment always ends), then answers with that reasoning prefilled as its
own earlier words. Both phases share one prompt prefix, so the second reuses the prompt cache.

``EmulatedThinking`` wraps an embedded engine whose model has no native reasoning; it is the one
place that decides to emulate (a model served alone and one inside a deployment chain alike).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, TypeVar

from glmserve.engines.base import Engine, Event, Finish, Generation, Progress, Reasoning, Text, Usage
from glmserve.engines.counting import count_prompt_tokens

HINT = (
    "Before you answer, think the problem through step by step inside <think></think>; "
    "after the reasoning, give the final answer to the user."
)
DEFAULT_BUDGET = 512
Counts = TypeVar("Counts", Usage, Progress)


def with_hint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if messages and messages[0]["role"] == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{HINT}"}, *messages[1:]]
    return [{"role": "system", "content": HINT}, *messages]


def reasoning_budget(max_tokens: int | None, asked: int | None = None) -> int:
    """The client's budget (Anthropic ``budget_tokens``) within ``max_tokens``, else the default."""
    if asked is not None:
        return max(1, asked if max_tokens is None else min(asked, max_tokens))
    return DEFAULT_BUDGET if max_tokens is None else max(1, min(DEFAULT_BUDGET, max_tokens // 2))


def thinking_phase(gen: Generation) -> Generation:
    """The first generation: the reasoning after a ``<think>`` prefill (its prompt is the request's)."""
    budget = reasoning_budget(gen.sampling.max_tokens, gen.reasoning_budget)
    return Generation(
        messages=[*with_hint(gen.messages), {"role": "assistant", "content": "<think>\n"}],
        sampling=replace(gen.sampling, max_tokens=budget, stop=["</think>"]),
    )


async def think_then_answer(engine: Engine, gen: Generation) -> AsyncIterator[Event]:
    messages = with_hint(gen.messages)
    think = thinking_phase(gen)
    parts: list[str] = []
    first: Usage | None = None
    events = engine.stream(think)
    try:
        async for ev in events:
            if isinstance(ev, Text):
                parts.append(ev.delta)
                yield Reasoning(ev.delta)
            elif isinstance(ev, Usage):
                first = ev
            elif isinstance(ev, Progress):  # so far, every token is reasoning
                yield replace(ev, reasoning_tokens=ev.completion_tokens)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    used = first.completion_tokens if first else 0
    left = None if gen.sampling.max_tokens is None else gen.sampling.max_tokens - used
    if left is not None and left <= 0:
        yield Finish("length")
        if first:
            yield replace(first, completion_tokens=used, reasoning_tokens=used)
        return
    reasoning = "".join(parts).strip()
    answer = replace(
        gen,
        messages=[*messages, {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n\n"}],
        sampling=replace(gen.sampling, max_tokens=left),
    )
    events = engine.stream(answer)
    try:
        async for ev in events:
            yield _both_phases(ev, first, used) if isinstance(ev, Usage | Progress) else ev
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def _both_phases(ev: Counts, first: Usage | None, used: int) -> Counts:
    """A count of the answer phase as the request's: the first phase's prompt, both phases' output."""
    prompt = first.prompt_tokens if first else ev.prompt_tokens
    cached = first.cached_tokens if first else ev.cached_tokens
    completion = used + ev.completion_tokens
    return replace(
        ev, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached, reasoning_tokens=used
    )


class EmulatedThinking:
    """An engine that thinks when asked (``thinking: enabled``) by think-then-answer."""

    def __init__(self, engine: Engine):
        self.name = engine.name
        self.inner = engine

    def stream(self, generation: Generation) -> AsyncIterator[Event]:
        if generation.thinking == "enabled":
            return think_then_answer(self.inner, generation)
        return self.inner.stream(generation)

    async def count_prompt_tokens(self, generation: Generation) -> int:
        """What ``usage.prompt_tokens`` will say: with thinking, the reasoning phase's prompt."""
        if generation.thinking == "enabled":
            generation = thinking_phase(generation)
        return await count_prompt_tokens(self.inner, generation)

    def __getattr__(self, name: str) -> Any:
        # The other capabilities (legacy completions, tokenization) involve no thinking.
        return getattr(self.inner, name)

    async def close(self) -> None:
        """The shared embedded engine is closed by the router, once."""
