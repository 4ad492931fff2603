"""Anthropic Messages requests → chat requests and generations (``frontends.messages.translate``)."""

from __future__ import annotations

from typing import Any

import pytest

from glmserve.engines.base import Generation, Sampling
from glmserve.errors import InvalidField
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ImagePart, TextPart
from glmserve.frontends.chat.tools import NamedToolChoice
from glmserve.frontends.messages.protocol import CountTokensRequest, MessagesRequest, parse_request
from glmserve.frontends.messages.signature import ThinkingSigner
from glmserve.frontends.messages.translate import Translation, translate

SIGNER = ThinkingSigner(b"k" * 32)
WEATHER = {
    "name": "get_weather",
    "description": "weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def request(**fields: Any) -> MessagesRequest:
    body = {"model": "glm-4.6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_request(MessagesRequest, body)


def run(headers: dict[str, str] | None = None, **fields: Any) -> tuple[Translation, Generation]:
    translation = translate(request(**fields), headers or {}, SIGNER)
    return translation, translation.apply(to_generation(translation.chat))


def test_system_blocks_join_and_the_billing_header_block_is_dropped() -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=ab12;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."},
    ]
    _, gen = run(system=system)
    assert gen.messages[0] == {"role": "system", "content": "You are Claude Code.\nBe brief."}
    assert gen.messages[1] == {"role": "user", "content": "hi"}


def test_a_tool_round_trip_becomes_tool_calls_and_tool_messages() -> None:
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    _, gen = run(messages=messages, tools=[WEATHER])
    assistant, tool, user = gen.messages[1:]
    assert assistant["content"] == "Let me look."
    assert assistant["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert tool == {"role": "tool", "content": "sunny", "tool_call_id": "toolu_1"}
    assert user == {"role": "user", "content": "and tomorrow?"}
    assert gen.tools[0]["function"]["parameters"] == WEATHER["input_schema"]


def test_an_error_result_says_so() -> None:
    messages = [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": True}],
        },
    ]
    _, gen = run(messages=messages, tools=[WEATHER])
    assert gen.messages[-1]["content"] == "Error: boom"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "tool", "name": "get_weather"}, "get_weather"),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: str) -> None:
    translation, gen = run(tools=[WEATHER], tool_choice=choice)
    assert gen.tool_choice == expected
    if choice["type"] == "tool":
        assert isinstance(translation.chat.tool_choice, NamedToolChoice)


def test_tool_choice_none_sends_no_tools() -> None:
    _, gen = run(tools=[WEATHER], tool_choice={"type": "none"})
    assert gen.tools == []


def test_images_become_image_url_parts() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]
    translation = translate(request(messages=[{"role": "user", "content": content}]), {}, SIGNER)
    parts = translation.chat.messages[0].content
    assert isinstance(parts, list) and isinstance(parts[0], TextPart)
    assert [p.image_url.url for p in parts if isinstance(p, ImagePart)] == [
        "data:image/png;base64,AAAA",
        "https://example.com/a.png",
    ]


def test_sampling_stop_user_top_k_and_headers() -> None:
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "x-1", "x-api-key": "secret"}
    _, gen = run(
        headers,
        temperature=0,
        top_p=0.5,
        top_k=7,
        stop_sequences=["END", ""],
        metadata={"user_id": "u1"},
    )
    assert (gen.sampling.temperature, gen.sampling.top_p, gen.sampling.top_k) == (0.0, 0.5, 7)
    assert gen.sampling.stop == ["END"] and gen.sampling.max_tokens == 64
    assert gen.headers == {"anthropic-version": "2023-06-01", "anthropic-beta": "x-1"}


def test_thinking_budget_and_reasoning_kept_on_tool_use_turns() -> None:
    ours = SIGNER.sign("I should call the tool.")
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should call the tool.", "signature": ours},
                {"type": "thinking", "thinking": "foreign", "signature": "EqQBCkYIBRgC"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "cold"}]},
    ]
    _, gen = run(messages=messages, tools=[WEATHER], thinking={"type": "enabled", "budget_tokens": 32})
    assert gen.thinking == "enabled" and gen.reasoning_budget == 32
    assistant = gen.messages[1]
    assert assistant["reasoning_content"] == "I should call the tool.\nforeign"
    # Only what an Anthropic upstream signed travels on as blocks: it would refuse glmserve's own.
    assert assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": "foreign", "signature": "EqQBCkYIBRgC"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]


def test_disabled_thinking_has_no_budget() -> None:
    _, gen = run(thinking={"type": "disabled"})
    assert (gen.thinking, gen.reasoning_budget) == ("disabled", None)


def test_output_config_format_is_a_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    _, gen = run(output_config={"format": {"type": "json_schema", "schema": schema}})
    assert gen.json_schema == schema


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"name": "f", "input_schema": {"type": "nope"}}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "tool", "name": "missing"}, "tools": [WEATHER]}, "tool_choice.name"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
        ({"container": "c1"}, "container"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": []},
                ]
            },
            "messages[2].content",
        ),
    ],
)
def test_unsupported_parts_are_a_400_naming_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidField) as caught:
        translate(request(**fields), {}, SIGNER)
    assert caught.value.param == param
    assert caught.value.status == 400


def test_parse_names_the_deepest_field() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]}
    with pytest.raises(InvalidField) as caught:
        parse_request(MessagesRequest, body)
    assert caught.value.param == "messages[0].content[0].text"


def test_count_tokens_needs_no_max_tokens() -> None:
    req = parse_request(CountTokensRequest, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert to_generation(translate(req, {}, SIGNER).chat).sampling == Sampling(
        temperature=0.6, top_p=0.95, defaulted=frozenset({"temperature", "top_p"})
    )


def test_signatures_verify_only_their_own_text() -> None:
    signature = SIGNER.sign("abc")
    assert signature.startswith("glm1.")
    assert SIGNER.verify("abc", signature)
    assert not SIGNER.verify("abd", signature)
    assert not ThinkingSigner(b"o" * 32).verify("abc", signature)
    assert not SIGNER.verify("abc", None)
