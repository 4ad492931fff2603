"""Events to wire: one JSON ``chat.completion`` or a sequence of ``chat.completion.chunk``s.

This is the one place that knows the chat-completions response shape (API.md §3);
``ChatRendering`` is the chat front-end's ``Rendering`` for the serving pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from glmserve.engines.base import Event, Finish, Logprobs, Reasoning, Text, ToolCall, Usage
from glmserve.errors import GlmError
from glmserve.http import sse
from glmserve.ids import hex_id


def new_completion_id() -> str:
    """Zhipu-style task id: local time to the second, then random hex."""
    return time.strftime("%Y%m%d%H%M%S") + hex_id(8)


@dataclass(slots=True)
class Envelope:
    """What every response and chunk of one request shares."""

    id: str
    request_id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def logprobs_body(content: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return None if content is None else {"content": content, "refusal": None}


class CompletionBuilder:
    """Collects events into one non-stream response."""

    def __init__(self, envelope: Envelope):
        self.envelope = envelope
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason = "stop"
        self.usage: Usage | None = None
        self.logprobs: list[dict[str, Any]] | None = None  # None: not asked for

    def add(self, ev: Event) -> None:
        match ev:
            case Text(delta):
                self.content.append(delta)
            case Logprobs(content):
                if self.logprobs is None:
                    self.logprobs = []
                self.logprobs.extend(content)
            case Reasoning(delta):
                self.reasoning.append(delta)
            case ToolCall(index, call_id, name, args):
                call = self.tool_calls.setdefault(
                    index, {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                )
                call["id"] = call["id"] or call_id
                call["function"]["name"] = call["function"]["name"] or name
                call["function"]["arguments"] += args
            case Finish(reason):
                self.finish_reason = reason
            case Usage():
                self.usage = ev

    def build(self) -> dict[str, Any]:
        env = self.envelope
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content), "refusal": None}
        # Always present (null without reasoning): SDK types have the attribute only when sent.
        message["reasoning_content"] = "".join(self.reasoning) or None
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {
            "id": env.id,
            "object": "chat.completion",
            "created": env.created,
            "model": env.model,
            "request_id": env.request_id,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": self.finish_reason,
                    "logprobs": logprobs_body(self.logprobs),
                }
            ],
            "usage": usage_body(self.usage),
        }


class ChunkEncoder:
    """Turns events into chunk dicts: role only first, usage exactly once.

    Usage rides on the finish chunk (Zhipu style) unless ``include_usage`` asks for OpenAI's
    trailing ``choices: []`` chunk. Engines send ``Finish`` before ``Usage``, so the finish
    chunk is held until usage arrives or the stream ends.
    """

    def __init__(self, envelope: Envelope, include_usage: bool):
        self.envelope = envelope
        self.include_usage = include_usage
        self._sent_role = False
        self._finish: str | None = None
        self._tool_ids: set[int] = set()
        self._logprobs: list[dict[str, Any]] | None = None  # the next delta's

    def _chunk(self, choices: list[dict[str, Any]], usage: Usage | None = None) -> dict[str, Any]:
        env = self.envelope
        body: dict[str, Any] = {
            "id": env.id,
            "object": "chat.completion.chunk",
            "created": env.created,
            "model": env.model,
            "request_id": env.request_id,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage_body(usage)
        return body

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        # Every delta has `reasoning_content` (null when none): the docs' thinking loop reads
        # `delta.reasoning_content` on each chunk, an attribute the openai SDK makes only when sent.
        delta = {"reasoning_content": None, **delta}
        if not self._sent_role:
            delta = {"role": "assistant", **delta}
            self._sent_role = True
        logprobs, self._logprobs = logprobs_body(self._logprobs), None
        return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}

    def encode(self, ev: Event) -> list[dict[str, Any]]:
        match ev:
            case Text(delta):
                return [self._chunk([self._delta({"content": delta})])]
            case Logprobs(content):  # they ride on the chunk of the delta that follows them
                if self._logprobs is None:
                    self._logprobs = []
                self._logprobs.extend(content)
                return []
            case Reasoning(delta) if delta:  # a signature alone has no place in chat completions
                return [self._chunk([self._delta({"reasoning_content": delta})])]
            case ToolCall(index, call_id, name, args):
                call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
                if index not in self._tool_ids:
                    self._tool_ids.add(index)
                    call.update(id=call_id, type="function", function={"name": name, "arguments": args})
                return [self._chunk([self._delta({"tool_calls": [call]})])]
            case Finish(reason):
                self._finish = reason
                return []
            case Usage():
                return self._close(ev)
        return []

    def _close(self, usage: Usage | None) -> list[dict[str, Any]]:
        reason = self._finish or "stop"
        self._finish = None
        if self.include_usage:
            chunks = [self._chunk([self._delta({}, reason)])]
            if usage is not None:
                chunks.append(self._chunk([], usage))
            return chunks
        return [self._chunk([self._delta({}, reason)], usage)]

    def finish(self) -> list[dict[str, Any]]:
        """Chunks still owed when the engine ended without usage."""
        return self._close(None) if self._finish is not None else []


class ChatRendering:
    """Chat Completions for the serving pipeline: JSON, or SSE chunks ending in ``[DONE]``."""

    media_type = "text/event-stream"

    def __init__(self, envelope: Envelope, include_usage: bool):
        self.envelope = envelope
        self._encoder = ChunkEncoder(envelope, include_usage)

    async def body(self, events: list[Event]) -> dict[str, Any]:
        builder = CompletionBuilder(self.envelope)
        for ev in events:
            builder.add(ev)
        return builder.build()

    async def open(self) -> list[bytes]:
        return []

    def encode(self, event: Event) -> list[bytes]:
        return [sse.event(chunk) for chunk in self._encoder.encode(event)]

    async def close(self) -> list[bytes]:
        return [*(sse.event(chunk) for chunk in self._encoder.finish()), sse.DONE]

    def fail(self, error: GlmError) -> list[bytes]:
        # The finish chunk still owed (e.g. finish_reason "network_error") goes first.
        return [*(sse.event(chunk) for chunk in self._encoder.finish()), sse.event(error.body())]
