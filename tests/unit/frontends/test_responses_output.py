"""frontends/responses/output + render: events → output items and the stream events announcing them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from glmserve.engines.base import Event, Finish, Reasoning, Text, ToolCall, Usage
from glmserve.errors import UpstreamError
from glmserve.frontends.responses.output import OutputBuilder
from glmserve.frontends.responses.render import ResponsesRendering, final_object

BASE = {"id": "resp_1", "object": "response", "model": "glm-4.6"}


def frames_of(events: list[Event], summary: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    builder = OutputBuilder(summary=summary)
    frames = [f for ev in events for f in builder.feed(ev)]
    final, closing = final_object(BASE, builder)
    return frames + closing, final


def test_reasoning_then_text_then_two_calls() -> None:
    events: list[Event] = [
        Reasoning("think "),
        Reasoning("hard"),
        Text("Hel"),
        Text("lo"),
        ToolCall(0, "call_a", "f", '{"x":'),
        ToolCall(1, "call_b", "g", "{}"),
        ToolCall(0, None, None, "1}"),
        Finish("tool_calls"),
        Usage(10, 7, cached_tokens=2, reasoning_tokens=3),
    ]
    frames, final = frames_of(events)
    kinds = [f["type"] for f in frames]
    assert kinds[:4] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
    ]
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 4
    reasoning, message, first, second = final["output"]
    assert (
        reasoning["content"] == [{"type": "reasoning_text", "text": "think hard"}]
        and reasoning["summary"] == []
    )
    assert message["content"][0]["text"] == "Hello" and final["output_text"] == "Hello"
    assert (first["call_id"], first["name"], first["arguments"]) == ("call_a", "f", '{"x":1}')
    assert (second["call_id"], second["arguments"]) == ("call_b", "{}")
    assert {item["status"] for item in final["output"]} == {"completed"} and final["status"] == "completed"
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    assert final["usage"]["total_tokens"] == 17
    # Deltas add up to what each done event and the final object say.
    args = "".join(
        f["delta"] for f in frames if f["type"].endswith("arguments.delta") and f["output_index"] == 2
    )
    assert args == first["arguments"]
    done = [f for f in frames if f["type"] == "response.output_item.done"]
    assert [f["item"] for f in sorted(done, key=lambda f: f["output_index"])] == final["output"]


def test_summary_mode_streams_the_reasoning_as_a_summary() -> None:
    frames, final = frames_of([Reasoning("why"), Text("ok"), Finish("stop")], summary=True)
    kinds = [f["type"] for f in frames]
    assert "response.reasoning_summary_part.added" in kinds and "response.reasoning_text.delta" not in kinds
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "why"}]
    assert "content" not in final["output"][0]


def test_length_makes_an_incomplete_response_with_incomplete_items() -> None:
    _, final = frames_of([Text("abc"), Finish("length"), Usage(3, 3)])
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete" and final["completed_at"] is None


def _sse(raw: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for frame in raw:
        head, data = frame.decode().split("\n", 1)
        payload = orjson.loads(data.removeprefix("data: "))
        assert head == f"event: {payload['type']}" and frame.endswith(b"\n\n")
        out.append(payload)
    return out


def test_rendering_numbers_every_event_and_keeps_the_final_object() -> None:
    kept: list[dict[str, Any]] = []

    async def finish(final: dict[str, Any]) -> None:
        kept.append(final)

    async def main() -> list[bytes]:
        r = ResponsesRendering(BASE, False, finish, lambda work: None)
        raw = await r.open()
        for ev in (Text("a"), Text("b"), Finish("stop"), Usage(1, 2)):
            raw += r.encode(ev)
        return raw + await r.close()

    events = _sse(asyncio.run(main()))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[0]["response"]["status"] == "in_progress"
    assert events[-1]["type"] == "response.completed" and kept == [events[-1]["response"]]


def test_a_failure_after_the_stream_began_is_response_failed() -> None:
    kept: list[Any] = []

    async def main() -> list[bytes]:
        r = ResponsesRendering(BASE, False, _keep(kept), lambda work: asyncio.ensure_future(work))
        raw = await r.open() + r.encode(Text("partial"))
        raw += r.fail(UpstreamError("deployment went away"))
        await asyncio.sleep(0)
        return raw

    events = _sse(asyncio.run(main()))
    failed = events[-1]
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert kept and kept[0]["status"] == "failed"


def _keep(into: list[Any]) -> Any:
    async def finish(final: dict[str, Any]) -> None:
        into.append(final)

    return finish
