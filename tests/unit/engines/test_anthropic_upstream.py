"""The ``anthropic`` deployment kind: request bodies, stream events, whole messages, errors."""

from __future__ import annotations

from typing import Any

import pytest

from glmserve.engines.base import Finish, Generation, Reasoning, Sampling, Text, ToolCall, Usage
from glmserve.engines.upstream.anthropic_events import MessageMapper, error_from, message_events
from glmserve.engines.upstream.anthropic_request import request_body
from glmserve.engines.upstream.dialects import AnthropicDialect
from glmserve.errors import InvalidField, InvalidRequest, RateLimited, Unavailable, UpstreamError

TOOL = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}


def gen(**extra: Any) -> Generation:
    sampling = Sampling(temperature=1.5, top_p=0.9, max_tokens=100, stop=["X"], top_k=5)
    extra.setdefault("messages", [{"role": "user", "content": "hi"}])
    return Generation(sampling=sampling, **extra)


def test_request_body_maps_roles_tools_and_sampling() -> None:
    messages = [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
            ],
        },
        {
            "role": "assistant",
            "content": "ok",
            "reasoning_content": "unsigned, left out",
            "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "S"}],
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "done"},
        {"role": "user", "content": "next"},
    ]
    body = request_body(gen(messages=messages, tools=[TOOL], tool_choice="required", thinking="enabled"), "m")
    assert body["system"] == "sys" and body["model"] == "m" and body["stream"] is True
    user, assistant, results = body["messages"]
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"},
    }
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "S"},
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"},
            {"type": "text", "text": "next"},
        ],
    }
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}, "description": "d"}]
    assert body["tool_choice"] == {"type": "any"}
    assert (body["temperature"], body["top_p"], body["top_k"], body["stop_sequences"]) == (1.0, 0.9, 5, ["X"])
    assert body["max_tokens"] == 100
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_the_clients_budget_and_headers_travel() -> None:
    g = gen(thinking="enabled", reasoning_budget=2048)
    g.headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "b1,b2"}
    assert request_body(g, "m")["thinking"]["budget_tokens"] == 2048
    headers = AnthropicDialect("anthropic", "key").headers(g, "sk")
    assert headers == {"anthropic-version": "2023-06-01", "anthropic-beta": "b1,b2", "x-api-key": "sk"}
    bearer = AnthropicDialect("anthropic", "bearer").headers(gen(), "sk")
    assert bearer == {"anthropic-version": "2023-06-01", "authorization": "Bearer sk"}


def test_json_object_is_refused_json_schema_is_an_output_format() -> None:
    with pytest.raises(InvalidField):
        request_body(gen(json_object=True), "m")
    schema = {"type": "object"}
    assert request_body(gen(json_schema=schema), "m")["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }


def test_stream_events() -> None:
    mapper = MessageMapper("a#0")
    stream = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": 7, "cache_read_input_tokens": 3}},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "SIG"},
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": "1}"},
            },
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}},
        ),
    ]
    events = [e for name, payload in stream for e in mapper.event(name, payload) or []]
    assert mapper.event("message_stop", {"type": "message_stop"}) is None
    assert events + mapper.end() == [
        Reasoning("hm"),
        Reasoning("", "SIG"),
        Text("Hi"),
        ToolCall(0, "toolu_x", "f", ""),
        ToolCall(0, None, None, '{"a":'),
        ToolCall(0, None, None, "1}"),
        Finish("tool_calls"),
        Usage(prompt_tokens=10, completion_tokens=4, cached_tokens=3),
    ]


def test_a_stop_sequence_is_named() -> None:
    mapper = MessageMapper("a#0")
    mapper.event(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "Z"}},
    )
    assert mapper.end()[0] == Finish("stop", "Z")


def test_a_whole_message() -> None:
    body = {
        "type": "message",
        "content": [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 2, "output_tokens": 3},
    }
    assert message_events(body, "a#0") == [
        Text("ok"),
        ToolCall(0, "toolu_1", "f", '{"a":1}'),
        Finish("tool_calls"),
        Usage(2, 3, 0),
    ]


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (529, {"type": "overloaded_error", "message": "Overloaded"}, Unavailable),
        (200, {"type": "overloaded_error", "message": "Overloaded"}, Unavailable),
        (429, {"type": "rate_limit_error", "message": "slow"}, RateLimited),
        (400, {"type": "invalid_request_error", "message": "bad field"}, InvalidRequest),
        (401, {"type": "authentication_error", "message": "no"}, UpstreamError),
        (429, {"type": "1113", "message": "余额不足"}, UpstreamError),  # Zhipu's code in `type`
        (500, {"type": "api_error", "message": "oops"}, UpstreamError),
    ],
)
def test_errors(status: int, error: dict[str, Any], kind: type[Exception]) -> None:
    exc = error_from({"type": "error", "error": error}, status, "a#0")
    assert type(exc) is kind
    if kind is UpstreamError and status in (401, 429):
        assert exc.permanent  # type: ignore[attr-defined]
    if kind is InvalidRequest:
        assert exc.message == "bad field"
