"""Between glmserve's ``Generation``/events and llama.cpp's OpenAI-shaped JSON."""

from __future__ import annotations

from typing import Any

from glmserve.engines.base import Event, Finish, Generation, Reasoning, Text, ToolCall, Usage
from glmserve.errors import ContextLengthExceeded, EngineError, GlmError, InvalidRequest


def to_request(generation: Generation) -> dict[str, Any]:
    """The body for ``Server.handle_chat_completions``; always streamed, always with usage."""
    s = generation.sampling
    body: dict[str, Any] = {
        "messages": generation.messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": s.temperature,
        "top_p": s.top_p,
    }
    if s.max_tokens is not None:
        body["max_tokens"] = s.max_tokens
    if s.stop:
        body["stop"] = s.stop
    if s.seed is not None:
        body["seed"] = s.seed
    if s.presence_penalty is not None:
        body["presence_penalty"] = s.presence_penalty
    if s.frequency_penalty is not None:
        body["frequency_penalty"] = s.frequency_penalty
    body.update(generation.extra)
    return body


def to_events(chunk: dict[str, Any]) -> list[Event]:
    """Events carried by one streamed llama.cpp chunk; an ``error`` chunk raises."""
    if "error" in chunk:
        raise to_error(chunk["error"])
    events: list[Event] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if reasoning := delta.get("reasoning_content"):
            events.append(Reasoning(reasoning))
        if content := delta.get("content"):
            events.append(Text(content))
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            events.append(
                ToolCall(call.get("index", 0), call.get("id"), fn.get("name"), fn.get("arguments") or "")
            )
        if reason := choice.get("finish_reason"):
            events.append(Finish(reason))
    if usage := chunk.get("usage"):
        details = usage.get("prompt_tokens_details") or {}
        events.append(
            Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                cached_tokens=details.get("cached_tokens", 0),
            )
        )
    return events


def to_error(error: dict[str, Any]) -> GlmError:
    """Translate llama.cpp's error object; its message never carries client secrets."""
    message = str(error.get("message") or "llama.cpp error")
    kind = error.get("type")
    if kind == "exceed_context_size_error":
        return ContextLengthExceeded(
            f"Prompt exceeds max length: {error.get('n_prompt_tokens')} tokens requested, "
            f"the context window is {error.get('n_ctx')} tokens",
            param="messages",
        )
    if error.get("code") == 400 or kind == "invalid_request_error":
        return InvalidRequest(message)
    return EngineError(message)
