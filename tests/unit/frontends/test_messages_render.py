"""Events → Anthropic ``message`` and stream events (``frontends.messages.render``)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from glmserve.engines.base import Event, Finish, Reasoning, Text, ToolCall, Usage
from glmserve.errors import RateLimited, Unavailable
from glmserve.frontends.messages.errors import error_body
from glmserve.frontends.messages.render import MessagesRendering
from glmserve.frontends.messages.signature import ThinkingSigner

SIGNER = ThinkingSigner(b"k" * 32)
EVENTS: list[Event] = [
    Reasoning("Think "),
    Reasoning("hard."),
    Text("Calling."),
    ToolCall(0, "call_a", "get_weather", '{"city": '),
    ToolCall(0, None, None, '"Paris"}'),
    ToolCall(1, "call_b", "get_time", ""),
    Finish("tool_calls"),
    Usage(prompt_tokens=20, completion_tokens=9, cached_tokens=12),
]


def body(events: list[Event]) -> dict[str, Any]:
    return asyncio.run(MessagesRendering(SIGNER, "glm-4.6", "req1").body(events))


def stream(events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    rendering = MessagesRendering(SIGNER, "glm-4.6", "req1")

    async def frames() -> list[bytes]:
        out = await rendering.open()
        for ev in events:
            out += rendering.encode(ev)
        return out + await rendering.close()

    parsed = []
    for frame in asyncio.run(frames()):
        head, data = frame.decode().rstrip("\n").split("\n")
        assert head.startswith("event: ") and data.startswith("data: ")
        payload = orjson.loads(data[6:])
        assert payload["type"] == head[7:]  # the SSE event name is the payload's type
        parsed.append((head[7:], payload))
    return parsed


def test_message_blocks_in_order_with_a_signature_and_parsed_inputs() -> None:
    message = body(EVENTS)
    thinking, text, first, second = message["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": "Think hard.",
        "signature": SIGNER.sign("Think hard."),
    }
    assert text == {"type": "text", "text": "Calling."}
    assert (first["type"], first["name"], first["input"]) == ("tool_use", "get_weather", {"city": "Paris"})
    assert (second["name"], second["input"]) == ("get_time", {})
    assert first["id"].startswith("toolu_") and first["id"] != second["id"]
    assert message["stop_reason"] == "tool_use" and message["stop_sequence"] is None
    assert message["usage"] == {
        "input_tokens": 8,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 12,
    }
    assert message["id"].startswith("msg_") and message["model"] == "glm-4.6"


@pytest.mark.parametrize(
    ("finish", "reason", "sequence"),
    [
        (Finish("stop"), "end_turn", None),
        (Finish("stop", "END"), "stop_sequence", "END"),
        (Finish("length"), "max_tokens", None),
        (Finish("content_filter"), "refusal", None),
    ],
)
def test_stop_reasons(finish: Finish, reason: str, sequence: str | None) -> None:
    message = body([Text("x"), finish, Usage(1, 1)])
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


def test_an_upstream_signature_is_kept() -> None:
    message = body([Reasoning("a"), Reasoning("", "UPSTREAM-SIG"), Text("b"), Finish("stop")])
    assert message["content"][0]["signature"] == "UPSTREAM-SIG"


def test_stream_event_order_and_indexes() -> None:
    events = stream(EVENTS)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    open_index = None
    seen = []
    for name, payload in events[2:-2]:
        if name == "content_block_start":
            assert open_index is None
            open_index = payload["index"]
            seen.append((open_index, payload["content_block"]["type"]))
        elif name == "content_block_delta":
            assert payload["index"] == open_index
        elif name == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
    assert seen == [(0, "thinking"), (1, "text"), (2, "tool_use"), (3, "tool_use")]
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["input_tokens"] == 8 and delta["usage"]["cache_read_input_tokens"] == 12


def test_the_sdk_accumulates_the_stream_into_the_non_stream_message() -> None:
    snapshot = None
    for _, payload in stream(EVENTS):
        if payload["type"] != "ping":
            snapshot = accumulate_event(event=payload, current_snapshot=snapshot, json_bufs={})  # type: ignore[arg-type]
    assert snapshot is not None
    streamed = snapshot.to_dict()
    whole = body(EVENTS)
    strip_ids = lambda blocks: [{k: v for k, v in b.items() if k != "id"} for b in blocks]  # noqa: E731
    assert strip_ids(streamed["content"]) == strip_ids(whole["content"])
    assert streamed["usage"]["input_tokens"] == whole["usage"]["input_tokens"]
    assert streamed["stop_reason"] == whole["stop_reason"]


def test_an_error_after_the_stream_began_is_an_error_event() -> None:
    rendering = MessagesRendering(SIGNER, "glm-4.6", "req1")
    [frame] = rendering.fail(Unavailable("busy"))
    assert frame.startswith(b"event: error\ndata: ")
    payload = orjson.loads(frame.split(b"data: ", 1)[1])
    assert payload == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy", "code": "1305"},
        "request_id": "req1",
    }


def test_error_types_follow_the_status() -> None:
    assert error_body(RateLimited("slow down"), "r")["error"]["type"] == "rate_limit_error"
