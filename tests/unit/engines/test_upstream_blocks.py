"""UpstreamEngine._decode: one socket block's SSE events become glmserve events in order, text
deltas of one block joined into one ``Text``, nothing else joined or reordered."""

from __future__ import annotations

import json
from typing import Any

from glmserve.config.deployments import Deployment
from glmserve.engines.base import Text, ToolCall
from glmserve.engines.upstream.engine import UpstreamEngine
from glmserve.engines.upstream.sse import SseDecoder


def sse(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def decode(*blocks: bytes) -> list[Any]:
    engine = UpstreamEngine("m#0", Deployment(kind="openai", base_url="http://127.0.0.1:9/v1"), "m", None)
    decoder, mapper = SseDecoder(), engine._dialect.stream(engine.name)
    return [event for block in blocks for event in engine._decode(decoder, mapper, block)]


def test_text_deltas_of_one_block_travel_as_one_text_in_order() -> None:
    words = ["Once", " upon", " a", " time"]
    block = b"".join(sse({"content": w}) for w in words)
    assert decode(block) == [Text("Once upon a time")]


def test_blocks_tool_calls_and_the_end_are_not_joined_across() -> None:
    call = {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}
    first = sse({"content": "A"}) + sse({"content": "B"}) + sse(call) + sse({"content": "C"})
    second = sse({"content": "D"}) + sse({}, "stop") + b"data: [DONE]\n\n"
    events = decode(first, second)
    assert [type(e) for e in events] == [Text, ToolCall, Text, Text, type(None)]  # finish: at the end
    assert [e.delta for e in events if isinstance(e, Text)] == ["AB", "C", "D"]
    assert "".join(e.delta for e in events if isinstance(e, Text)) == "ABCD"
