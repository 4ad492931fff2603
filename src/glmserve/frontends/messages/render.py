"""Events to Anthropic's wire: one ``message`` object, or its stream of named SSE events.

Blocks follow the events: a run of ``Reasoning`` is a ``thinking`` block (its ``signature`` the
upstream's, else glmserve's own, see ``signature``), a run of ``Text`` a ``text`` block, each
tool call a ``tool_use`` block (``toolu_`` id, ``input`` the parsed arguments object). A tool
call is emitted whole once it is complete (its arguments then parse, so ``input_json_delta``
always adds up to valid JSON); while one is being written, a ``ping`` goes out every
``PING_EVERY_S`` so the connection never looks dead.

Stream order: ``message_start``, ``ping``, then per block ``content_block_start`` /
``content_block_delta``… / ``content_block_stop`` with consecutive indexes, ``message_delta``
(stop reason and the final usage: the usage in ``message_start`` is zeros, as the engines only
count at the end), ``message_stop``. A failure after the stream began is an ``error`` event.

Usage follows Anthropic: ``input_tokens`` excludes the prompt tokens read from the cache
(``cache_read_input_tokens``); ``cache_creation_input_tokens`` is 0 (caching is automatic).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from glmserve.engines.base import Event, Finish, Reasoning, Text, ToolCall, Usage
from glmserve.errors import GlmError
from glmserve.frontends.messages.errors import error_body
from glmserve.frontends.messages.signature import ThinkingSigner
from glmserve.ids import hex_id

log = logging.getLogger("glmserve.frontends.messages")
PING_EVERY_S = 10.0
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "sensitive": "refusal",
}


def new_message_id() -> str:
    return "msg_" + hex_id(12)


def tool_use_id(call_id: str | None) -> str:
    if call_id and call_id.startswith("toolu_"):
        return call_id
    return "toolu_" + hex_id(12)


def tool_input(arguments: str) -> dict[str, Any]:
    """The arguments as an object; text that is not one becomes ``{}`` (and is logged)."""
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    log.warning("a tool call's arguments are not a JSON object; sent as {}")
    return {}


def usage_body(usage: Usage | None) -> dict[str, int]:
    prompt = usage.prompt_tokens if usage else 0
    cached = min(usage.cached_tokens, prompt) if usage else 0
    return {
        "input_tokens": prompt - cached,
        "output_tokens": usage.completion_tokens if usage else 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


@dataclass(slots=True)
class _Tool:
    index: int
    id: str | None
    name: str | None
    arguments: list[str] = field(default_factory=list)

    def block(self) -> dict[str, Any]:
        return {
            "type": "tool_use",
            "id": tool_use_id(self.id),
            "name": self.name or "",
            "input": tool_input("".join(self.arguments)),
        }


class Blocks:
    """Events grouped into content blocks, in order; both renderings share it."""

    def __init__(self, signer: ThinkingSigner) -> None:
        self.signer = signer
        self.finish: Finish | None = None
        self.usage: Usage | None = None
        self.kind: str | None = None  # "thinking" | "text" | "tool_use": the open block
        self.thinking: list[str] = []
        self.signature: str | None = None
        self.tools: dict[int, _Tool] = {}

    def seal(self) -> str:
        return self.signature or self.signer.sign("".join(self.thinking))

    def stop_reason(self) -> tuple[str, str | None]:
        finish = self.finish or Finish("stop")
        if finish.reason == "stop" and finish.stop_sequence:
            return "stop_sequence", finish.stop_sequence
        return STOP_REASONS.get(finish.reason, "end_turn"), None


class MessageBuilder(Blocks):
    """Collects events into one non-stream ``message``."""

    def __init__(self, signer: ThinkingSigner) -> None:
        super().__init__(signer)
        self.content: list[dict[str, Any]] = []

    def _close(self) -> None:
        if self.kind == "thinking":
            self.content[-1]["signature"] = self.seal()
        elif self.kind == "tool_use":
            self.content += [self.tools[i].block() for i in sorted(self.tools)]
            self.tools = {}
        self.kind = None

    def add(self, ev: Event) -> None:
        match ev:
            case Text(delta):
                if self.kind != "text":
                    self._close()
                    self.kind = "text"
                    self.content.append({"type": "text", "text": ""})
                self.content[-1]["text"] += delta
            case Reasoning(delta, signature):
                if self.kind != "thinking":
                    self._close()
                    self.kind, self.thinking, self.signature = "thinking", [], None
                    self.content.append({"type": "thinking", "thinking": "", "signature": ""})
                self.thinking.append(delta)
                self.content[-1]["thinking"] += delta
                self.signature = signature or self.signature
            case ToolCall():
                if self.kind != "tool_use":
                    self._close()
                    self.kind = "tool_use"
                _add_call(self.tools, ev)
            case Finish():
                self.finish = ev
            case Usage():
                self.usage = ev

    def build(self, message_id: str, model: str) -> dict[str, Any]:
        self._close()
        reason, sequence = self.stop_reason()
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self.content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": usage_body(self.usage),
        }


def _add_call(tools: dict[int, _Tool], ev: ToolCall) -> None:
    tool = tools.setdefault(ev.index, _Tool(ev.index, ev.id, ev.name))
    tool.id, tool.name = tool.id or ev.id, tool.name or ev.name
    tool.arguments.append(ev.arguments_delta)


def frame(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def ping() -> bytes:
    return frame("ping", {"type": "ping"})


class EventEncoder(Blocks):
    """Turns events into Anthropic stream events with consecutive block indexes."""

    def __init__(self, signer: ThinkingSigner, message_id: str, model: str) -> None:
        super().__init__(signer)
        self.message_id, self.model = message_id, model
        self.index = -1
        self.last_frame = time.monotonic()

    def start(self) -> list[bytes]:
        message = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage_body(None),
        }  # fmt: skip
        return self._sent([frame("message_start", {"type": "message_start", "message": message}), ping()])

    def _sent(self, frames: list[bytes]) -> list[bytes]:
        if frames:
            self.last_frame = time.monotonic()
        return frames

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        self.kind, self.index = kind, self.index + 1
        return [
            frame(
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": block},
            )
        ]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return frame(
            "content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta}
        )

    def _stop(self) -> bytes:
        return frame("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _close(self) -> list[bytes]:
        out: list[bytes] = []
        if self.kind == "thinking":
            out += [self._delta({"type": "signature_delta", "signature": self.seal()}), self._stop()]
        elif self.kind == "text":
            out.append(self._stop())
        elif self.kind == "tool_use":
            tools, self.tools = self.tools, {}
            for i in sorted(tools):
                block = tools[i].block()
                arguments = orjson.dumps(block.pop("input")).decode()
                out += self._open("tool_use", {**block, "input": {}})
                out += [self._delta({"type": "input_json_delta", "partial_json": arguments}), self._stop()]
        self.kind = None
        return out

    def encode(self, ev: Event) -> list[bytes]:
        out: list[bytes] = []
        match ev:
            case Text(delta):
                if self.kind != "text":
                    out += self._close() + self._open("text", {"type": "text", "text": ""})
                if delta:
                    out.append(self._delta({"type": "text_delta", "text": delta}))
            case Reasoning(delta, signature):
                if self.kind != "thinking":
                    out += self._close()
                    out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                    self.thinking, self.signature = [], None
                self.thinking.append(delta)
                self.signature = signature or self.signature
                if delta:
                    out.append(self._delta({"type": "thinking_delta", "thinking": delta}))
            case ToolCall():
                if self.kind != "tool_use":
                    out += self._close()
                    self.kind = "tool_use"
                _add_call(self.tools, ev)
                if time.monotonic() - self.last_frame >= PING_EVERY_S:
                    out.append(ping())
            case Finish():
                self.finish = ev
            case Usage():
                self.usage = ev
        return self._sent(out)

    def end(self) -> list[bytes]:
        reason, sequence = self.stop_reason()
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence}}
        out = self._close()
        out.append(frame("message_delta", {**delta, "usage": usage_body(self.usage)}))
        out.append(frame("message_stop", {"type": "message_stop"}))
        return out


class MessagesRendering:
    """Anthropic Messages for the serving pipeline."""

    media_type = "text/event-stream"

    def __init__(self, signer: ThinkingSigner, model: str, request_id: str) -> None:
        self.signer = signer
        self.model = model
        self.request_id = request_id
        self.message_id = new_message_id()
        self._encoder = EventEncoder(signer, self.message_id, model)

    async def body(self, events: list[Event]) -> dict[str, Any]:
        builder = MessageBuilder(self.signer)
        for ev in events:
            builder.add(ev)
        return builder.build(self.message_id, self.model)

    async def open(self) -> list[bytes]:
        return self._encoder.start()

    def encode(self, event: Event) -> list[bytes]:
        return self._encoder.encode(event)

    async def close(self) -> list[bytes]:
        return self._encoder.end()

    def fail(self, error: GlmError) -> list[bytes]:
        return [frame("error", error_body(error, self.request_id))]
