"""Apply a model family's parsers to an engine's event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from glmserve.engines.base import Event, Finish, Progress, Reasoning, Text, Usage
from glmserve.parsers.reasoning import ReasoningParser
from glmserve.parsers.tool_calls.extractor import ToolCallExtractor


class _Parsers:
    def __init__(self, reasoning: ReasoningParser | None, tools: ToolCallExtractor | None):
        self.reasoning = reasoning
        self.tools = tools
        self.reasoning_chunks = 0

    def text(self, delta: str) -> list[Event]:
        events: list[Event] = self.reasoning.feed(delta) if self.reasoning else [Text(delta)]
        return self._tools(events)

    def flush(self) -> list[Event]:
        events = self.reasoning.flush() if self.reasoning else []
        events = self._tools(events)
        return events + (self.tools.flush() if self.tools else [])

    def _tools(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, Reasoning):
                self.reasoning_chunks += 1
                out.append(ev)
            elif isinstance(ev, Text) and self.tools is not None:
                out += self.tools.feed(ev.delta)
            else:
                out.append(ev)
        return out


async def parse_stream(
    events: AsyncIterator[Event], reasoning: ReasoningParser | None, tools: ToolCallExtractor | None
) -> AsyncIterator[Event]:
    """Text deltas become reasoning / text / tool-call events; ``finish_reason`` follows the calls."""
    parsers = _Parsers(reasoning, tools)
    try:
        async for ev in events:
            match ev:
                case Text(delta):
                    for out in parsers.text(delta):
                        yield out
                case Finish(reason):
                    for out in parsers.flush():
                        yield out
                    called = tools is not None and tools.calls > 0
                    yield Finish("tool_calls" if called and reason == "stop" else reason)
                case Usage() | Progress() if reasoning is not None and not ev.reasoning_tokens:
                    # llama.cpp streams about one token per delta: a close count for native reasoning.
                    yield replace(ev, reasoning_tokens=parsers.reasoning_chunks)
                case _:
                    yield ev
    finally:
        await events.aclose()  # type: ignore[attr-defined]
