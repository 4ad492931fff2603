"""Upstream chat chunks (and whole completions) onto glmserve's events.

Upstreams differ in small ways, all accepted here:

- reasoning arrives as ``reasoning_content`` (Zhipu, DeepSeek, llama.cpp, SGLang) or as
  ``reasoning`` (vLLM, Ollama);
- tool calls arrive streamed OpenAI-style, or whole in one delta (Zhipu without ``tool_stream``),
  sometimes without ``index`` or ``id``, with ``arguments`` as a string or an object; they leave
  as OpenAI deltas: ``index`` always, ``id`` and ``name`` on the first delta of a call, arguments
  as string fragments;
- usage rides on the finish chunk (Zhipu) or on a trailing ``choices: []`` chunk (OpenAI with
  ``include_usage``), possibly repeated; ``Finish`` and the last ``Usage`` are emitted once, when
  the stream ends. Where usage comes on every chunk (vLLM's and SGLang's
  ``continuous_usage_stats``: ``ChunkMapper(continuous=True)``), each chunk's usage is also a
  ``Progress`` before its deltas.
"""

from __future__ import annotations

from typing import Any

import orjson

from glmserve.engines.base import Event, Finish, Logprobs, Progress, Reasoning, Text, ToolCall, Usage
from glmserve.engines.logprobs import logprob_entries
from glmserve.ids import hex_id

FINISH_ALIASES = {
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "eos": "stop",
    "end_turn": "stop",
    "max_tokens": "length",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _details(usage: dict[str, Any], key: str) -> dict[str, Any]:
    details = usage.get(key)
    return details if isinstance(details, dict) else {}


def usage_from(usage: dict[str, Any]) -> Usage:
    cached = _int(_details(usage, "prompt_tokens_details").get("cached_tokens"))
    reasoning = _int(_details(usage, "completion_tokens_details").get("reasoning_tokens"))
    return Usage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=cached or _int(usage.get("prompt_cache_hit_tokens")),
        reasoning_tokens=reasoning,
    )


def _arguments(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


class ToolCallNormaliser:
    """Per response: assigns indices and ids, holds a call's arguments until its name is known."""

    def __init__(self) -> None:
        self._started: set[int] = set()
        self._pending: dict[int, list[str]] = {}
        self._by_id: dict[str, int] = {}

    @property
    def count(self) -> int:
        return len(self._started)

    def _index(self, call: dict[str, Any], name: Any, position: int) -> int:
        index = call.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id in self._by_id:
            return self._by_id[call_id]
        if not call_id and not name and position == 0 and self._started:
            return max(self._started)  # a bare continuation of the call in progress
        return len(self._started) + len(self._pending)

    def feed(self, calls: list[Any]) -> list[Event]:
        events: list[Event] = []
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            raw = call.get("function")
            fn: dict[str, Any] = raw if isinstance(raw, dict) else {}
            name = fn.get("name")
            index = self._index(call, name, position)
            args = _arguments(fn.get("arguments"))
            if index in self._started:
                if args:
                    events.append(ToolCall(index, None, None, args))
                continue
            if not isinstance(name, str) or not name:
                self._pending.setdefault(index, []).append(args)
                continue
            call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
            call_id = call_id or f"call_{hex_id(12)}"
            self._by_id[call_id] = index
            self._started.add(index)
            held = "".join(self._pending.pop(index, []))
            events.append(ToolCall(index, call_id, name, held + args))
        return events


class ChunkMapper:
    """One per upstream response."""

    def __init__(self, continuous: bool = False) -> None:
        self.tools = ToolCallNormaliser()
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.continuous = continuous

    def chunk(self, chunk: Any) -> list[Event]:
        """Events of one chunk (the caller has already checked it for an error)."""
        if not isinstance(chunk, dict):
            raise ValueError("an upstream chunk is not a JSON object")
        events: list[Event] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            raw = choice.get("logprobs")  # the delta's own: before it (the test keeps chunks cheap)
            if raw is not None and (logprobs := logprob_entries(raw)):
                events.append(Logprobs(logprobs))
            if isinstance(delta, dict):
                self._delta(delta, events)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finish = FINISH_ALIASES.get(reason, reason)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            self.usage = usage_from(usage)
            if self.continuous and events:  # with deltas only: the first event is still the first delta
                u = self.usage
                events.insert(
                    0, Progress(u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens)
                )
        return events

    def _delta(self, delta: dict[str, Any], events: list[Event]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events.append(Reasoning(reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(Text(content))
        calls = delta.get("tool_calls")
        if isinstance(calls, list) and calls:
            events += self.tools.feed(calls)

    def end(self) -> list[Event]:
        """``Finish`` and the last ``Usage``, once the upstream has finished."""
        reason = self.finish or "stop"
        if reason == "stop" and self.tools.count:
            reason = "tool_calls"
        events: list[Event] = [Finish(reason)]
        if self.usage is not None:
            events.append(self.usage)
        return events


def completion_events(body: Any) -> list[Event]:
    """The events of a whole (non-streamed) ``chat.completion``."""
    mapper = ChunkMapper()
    events = mapper.chunk(body)
    if not isinstance(body.get("choices"), list) or not body["choices"]:
        raise ValueError("the upstream's completion has no choices")
    return events + mapper.end()
