"""An Anthropic-compatible upstream's stream (or whole ``message``) onto glmserve's events.

Named SSE events: ``message_start`` (input usage), ``content_block_start`` / ``_delta`` /
``_stop`` (``text_delta`` → ``Text``, ``thinking_delta`` → ``Reasoning``, ``signature_delta``
→ ``Reasoning("", signature)``, a ``tool_use`` block and its ``input_json_delta``s →
``ToolCall``s indexed by tool), ``message_delta`` (stop reason, output usage),
``message_stop`` (the end), ``ping`` (ignored) and ``error``. ``redacted_thinking`` blocks
have no event and are dropped.

Usage: Anthropic's ``input_tokens`` excludes cached tokens, so ``prompt_tokens`` is
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and ``cached_tokens``
is ``cache_read_input_tokens``. Stop reasons: ``end_turn``/``pause_turn`` → ``stop``,
``stop_sequence`` → ``stop`` naming the sequence, ``max_tokens`` and
``model_context_window_exceeded`` → ``length``, ``tool_use`` → ``tool_calls``, ``refusal``
→ ``content_filter``.

Errors (``{"type": "error", "error": {"type", "message"}}``) are classified by their type —
Zhipu's endpoint puts its numeric code there instead, which is used as the code — and 529 is
Anthropic's overloaded status; then as every upstream error (``upstream.errors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from glmserve.engines.base import Event, Finish, Reasoning, Text, ToolCall, Usage
from glmserve.engines.upstream import errors as upstream_errors
from glmserve.engines.upstream.sse import SseEvent
from glmserve.errors import GlmError

STOP_REASONS = {
    "end_turn": "stop",
    "pause_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERROR_CODES = {
    "invalid_request_error": "1210",
    "request_too_large": "1210",
    "authentication_error": "1000",
    "permission_error": "1220",
    "billing_error": "1113",
    "not_found_error": "1211",
    "rate_limit_error": "1302",
    "overloaded_error": "1305",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def error_from(payload: Any, status: int, label: str, headers: Mapping[str, str] | None = None) -> GlmError:
    error = upstream_errors.error_in(payload) or {}
    kind = str(error.get("type") or "")
    code = error.get("code") or (kind if kind.isdigit() else ERROR_CODES.get(kind, ""))
    after = upstream_errors.retry_after_seconds(headers or {})
    return upstream_errors.from_error({**error, "code": code}, 503 if status == 529 else status, label, after)


def error_response(status: int, raw: bytes, headers: Mapping[str, str], label: str) -> GlmError:
    try:
        payload = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        payload = None
    return error_from(payload, status, label, headers)


class MessageMapper:
    """One per upstream response."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.finish: str | None = None
        self.stop_sequence: str | None = None
        self.usage: dict[str, int] = {}
        self._tools: dict[int, int] = {}  # content block index -> tool call index

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update({k: _int(v) for k, v in usage.items() if isinstance(v, int)})

    def _start(self, index: int, block: dict[str, Any]) -> list[Event]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [Text(block["text"])]
        if kind == "thinking" and (block.get("thinking") or block.get("signature")):
            return [Reasoning(block.get("thinking") or "", block.get("signature") or None)]
        if kind == "tool_use":
            self._tools[index] = tool = len(self._tools)
            given = block.get("input")
            arguments = orjson.dumps(given).decode() if given else ""
            return [ToolCall(tool, block.get("id"), block.get("name"), arguments)]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Event]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [Text(delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [Reasoning(delta["thinking"])]
        if kind == "signature_delta" and delta.get("signature"):
            return [Reasoning("", delta["signature"])]
        if kind == "input_json_delta" and index in self._tools and delta.get("partial_json"):
            return [ToolCall(self._tools[index], None, None, delta["partial_json"])]
        return []

    def event(self, name: str, payload: Any) -> list[Event] | None:
        """Events of one named SSE event; ``None`` once the message has ended."""
        if not isinstance(payload, dict):
            raise ValueError("an upstream event is not a JSON object")
        kind = payload.get("type") or name
        if kind == "error" or name == "error":
            raise error_from(payload, 200, self.label)
        if kind == "message_start":
            self._usage((payload.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            return self._start(_int(payload.get("index")), payload.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(_int(payload.get("index")), payload.get("delta") or {})
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if isinstance(delta.get("stop_reason"), str):
                self.finish = STOP_REASONS.get(delta["stop_reason"], "stop")
                self.stop_sequence = (
                    delta.get("stop_sequence") if delta["stop_reason"] == "stop_sequence" else None
                )
            self._usage(payload.get("usage"))
        elif kind == "message_stop":
            return None
        return []

    def feed(self, sse: SseEvent) -> list[Event] | None:
        return self.event(sse.event, orjson.loads(sse.data))

    def end(self) -> list[Event]:
        reason = self.finish or ("tool_calls" if self._tools else "stop")
        u = self.usage
        cached = u.get("cache_read_input_tokens", 0)
        prompt = u.get("input_tokens", 0) + cached + u.get("cache_creation_input_tokens", 0)
        usage = Usage(prompt_tokens=prompt, completion_tokens=u.get("output_tokens", 0), cached_tokens=cached)
        return [Finish(reason, self.stop_sequence), usage]


def message_events(body: Any, label: str) -> list[Event]:
    """The events of a whole (non-streamed) ``message``."""
    if not isinstance(body, dict) or body.get("type") == "error":
        raise error_from(body, 200, label)
    if not isinstance(body.get("content"), list):
        raise ValueError("the upstream's message has no content")
    mapper = MessageMapper(label)
    events: list[Event] = []
    for index, block in enumerate(body["content"]):
        if isinstance(block, dict):
            events += mapper._start(index, block)
    mapper.event("message_delta", {"type": "message_delta", "delta": body, "usage": body.get("usage")})
    return events + mapper.end()
