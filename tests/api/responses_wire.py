"""Helpers for the Responses API suites: per-event schema checks and raw SSE reading.

Each streamed event is validated against its own component schema (a clear error) and against
the ``ResponseStreamEvent`` union; every object against ``Response``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from .wire_schema import assert_valid

EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.queued": "ResponseQueuedEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "error": "ResponseErrorEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def assert_event(event: dict[str, Any]) -> None:
    assert event["type"] in EVENT_SCHEMAS, f"unexpected event type {event['type']}"
    assert_valid(EVENT_SCHEMAS[event["type"]], event)
    assert_valid("ResponseStreamEvent", event)


def assert_response(body: dict[str, Any]) -> None:
    assert_valid("Response", body)
    assert body["object"] == "response" and body["id"].startswith("resp_")


def read_events(text: str) -> list[dict[str, Any]]:
    """``event: <type>`` + ``data: <json>`` blocks; the two must agree."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        names = [line[len("event: ") :] for line in lines if line.startswith("event: ")]
        data = "\n".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
        event = json.loads(data)
        assert names == [event["type"]], f"event line {names} does not name {event['type']}"
        events.append(event)
    return events


def post_stream(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a streamed response, check framing, order and every event; return the events."""
    with http.stream("POST", "responses", json={**body, "stream": True}) as response:
        text = "".join(response.iter_text())
    assert response.status_code == 200, text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = read_events(text)
    for event in events:
        assert_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in TERMINAL and all(e["type"] not in TERMINAL for e in events[:-1])
    assert_response(events[-1]["response"])
    return events


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
