"""A scriptable Anthropic-compatible upstream: ``FakeUpstream``'s HTTP and control, Anthropic's wire.

``POST /v1/messages`` behaves as its ``model`` says (``SCENARIOS``, or a script); every request
is recorded with its headers and body. ``POST /v1/messages/count_tokens`` answers
``COUNTED`` tokens. Answers are ``ANSWER`` word by word, a ``tool_use`` of the first tool when
``tool_choice`` is ``any`` or ``tool``, and usage with ``CACHED`` tokens read from the cache.
"""

from __future__ import annotations

from typing import Any

import orjson

from .fake_upstream import (
    ANSWER,
    KNOWN,
    FakeUpstream,
    Reader,
    Record,
    Writer,
    _chunked,
    _json,
    _sse_head,
    _words,
)

SCENARIOS = (
    "ok",  # an answer: SSE when stream is true, a message JSON otherwise
    "thinking",  # a thinking block signed by the upstream, then the answer
    "overloaded",  # HTTP 529 overloaded_error
    "rate_limited",  # HTTP 429 rate_limit_error with retry-after: 1
    "bad_request",  # HTTP 400 invalid_request_error (the request's fault: passed on)
    "zhipu_1113",  # HTTP 429 with Zhipu's code in error.type (its account is out of balance)
    "error_mid",  # two text deltas, then an `error` event (overloaded_error)
)
COUNTED = 42
CACHED = 3
SIGNATURE = "upstream-signature-EqQBCkYIBRgC"
TOOL_INPUT = {"city": "Beijing"}
WORDS = _words(len(ANSWER.split(" ")))  # ANSWER in word-sized deltas


def event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _tool(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = body.get("tool_choice") or {}
    if not body.get("tools") or choice.get("type") not in ("any", "tool"):
        return None
    name = choice.get("name") or body["tools"][0]["name"]
    return {"type": "tool_use", "id": "toolu_fake_1", "name": name, "input": TOOL_INPUT}


def usage(output: int) -> dict[str, int]:
    return {
        "input_tokens": 10,
        "cache_read_input_tokens": CACHED,
        "cache_creation_input_tokens": 0,
        "output_tokens": output,
    }


def message(body: dict[str, Any], thinking: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if thinking:
        content.append({"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE})
    call = _tool(body)
    content.append(call if call else {"type": "text", "text": ANSWER})
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
        "content": content, "stop_reason": "tool_use" if call else "end_turn", "stop_sequence": None,
        "usage": usage(len(WORDS)),
    }  # fmt: skip


def stream_events(body: dict[str, Any], thinking: bool = False) -> list[bytes]:
    whole = message(body, thinking)
    start = {**whole, "content": [], "stop_reason": None, "usage": {**usage(0), "output_tokens": 1}}
    out = [
        event("message_start", {"type": "message_start", "message": start}),
        event("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(whole["content"]):
        empty = {"thinking": {**block, "thinking": "", "signature": ""}, "text": {**block, "text": ""}}
        first = empty.get(block["type"], {**block, "input": {}})
        out.append(
            event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": first}
            )
        )
        if block["type"] == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                      {"type": "signature_delta", "signature": block["signature"]}]  # fmt: skip
        elif block["type"] == "text":
            deltas = [{"type": "text_delta", "text": w} for w in WORDS]
        else:
            text = orjson.dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in (text[:5], text[5:])]
        out += [
            event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": whole["stop_reason"], "stop_sequence": None}
    out.append(event("message_delta", {"type": "message_delta", "delta": delta, "usage": whole["usage"]}))
    out.append(event("message_stop", {"type": "message_stop"}))
    return out


def error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


class FakeAnthropic(FakeUpstream):
    GENERATE_PATH = "/v1/messages"
    KNOWN_SCENARIOS = KNOWN | frozenset(SCENARIOS)  # "ok" is Anthropic's own here

    @property
    def root(self) -> str:
        """The ``base_url`` of an ``anthropic`` deployment (the SDKs' form: no ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    async def _respond(self, rec: Record, reader: Reader, writer: Writer) -> bool:
        if rec.path.split("?")[0].endswith("/v1/messages/count_tokens"):
            return await _json(writer, 200, {"input_tokens": COUNTED})
        return await super()._respond(rec, reader, writer)

    async def _answer(self, rec: Record, writer: Writer, thinking: bool) -> bool:
        if not rec.body.get("stream"):
            return await _json(writer, 200, message(rec.body, thinking))
        await _sse_head(writer)
        for frame in stream_events(rec.body, thinking):
            await _chunked(writer, frame)
        await _chunked(writer, b"")
        return True

    async def _do_ok(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await self._answer(rec, writer, thinking=False)

    async def _do_thinking(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await self._answer(rec, writer, thinking=True)

    async def _do_overloaded(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await _json(writer, 529, error("overloaded_error", "Overloaded"))

    async def _do_rate_limited(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await _json(writer, 429, error("rate_limit_error", "slow down"), {"retry-after": "1"})

    async def _do_bad_request(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await _json(writer, 400, error("invalid_request_error", "messages.0: upstream says no"))

    async def _do_zhipu_1113(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await _json(writer, 429, error("1113", "余额不足或无可用资源包,请充值。"))

    async def _do_error_mid(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await _sse_head(writer)
        for frame in stream_events(rec.body)[:5]:  # message_start, ping, block start, two deltas
            await _chunked(writer, frame)
        await _chunked(writer, event("error", error("overloaded_error", "Overloaded")))
        await _chunked(writer, b"")
        return True
