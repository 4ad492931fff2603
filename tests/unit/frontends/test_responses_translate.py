"""frontends/responses: input items → chat messages, tools and formats; refusals name their field."""

from __future__ import annotations

from typing import Any

import pytest

from glmserve.errors import InvalidField, InvalidRequest
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ImagePart
from glmserve.frontends.responses.items import normalize
from glmserve.frontends.responses.protocol import CreateResponse
from glmserve.frontends.responses.translate import in_responses_terms, to_chat_request
from glmserve.frontends.validation import parse

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def chat(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> Any:
    req = parse(CreateResponse, {"model": "glm-4.6", **body})
    return to_chat_request(req, history or [], normalize(req.input))


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    req, where = chat({"input": "hi", "instructions": "Be brief."})
    assert [(m.role, m.content) for m in req.messages] == [("system", "Be brief."), ("user", "hi")]
    assert where == ["instructions", "input[0]"]


def test_items_become_one_assistant_turn_with_its_calls_then_tool_messages() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "need a tool"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"A"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"B"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "A sun, B rain"}],
        },
    ]
    req, where = chat({"input": items, "tools": [WEATHER]})
    roles = [m.role for m in req.messages]
    assert roles == ["user", "assistant", "tool", "tool", "assistant"]
    turn = req.messages[1]
    assert turn.reasoning_content == "need a tool"
    assert [(c.id, c.function.name, c.function.arguments) for c in turn.tool_calls or []] == [
        ("c1", "get_weather", '{"city":"A"}'),
        ("c2", "get_weather", '{"city":"B"}'),
    ]
    assert [(m.tool_call_id, m.content) for m in req.messages[2:4]] == [("c1", "sunny"), ("c2", "rain")]
    assert req.messages[4].content == "A sun, B rain"
    assert where == ["input[0]", "input[2]", "input[4]", "input[5]", "input[6]"]
    gen = to_generation(req)
    assert gen.tools[0]["function"]["strict"] is True and gen.tool_choice == "auto"


def test_history_comes_before_the_new_input() -> None:
    answer = {"type": "output_text", "text": "one", "annotations": [], "logprobs": []}
    history = [
        *normalize([{"role": "user", "content": "first"}]),
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "content": [answer]},
    ]
    req, where = chat({"input": "second", "instructions": "sys"}, history)
    assert [m.content for m in req.messages] == ["sys", "first", "one", "second"]
    assert where[1:3] == ["previous_response_id", "previous_response_id"]


def test_images_become_image_url_parts_in_their_place() -> None:
    content = [{"type": "input_text", "text": "what is this"}, {"type": "input_image", "image_url": "data:x"}]
    req, _ = chat({"input": [{"role": "user", "content": content}]})
    parts = req.messages[0].content
    assert isinstance(parts, list) and isinstance(parts[1], ImagePart) and parts[1].image_url.url == "data:x"


def test_stored_input_items_have_ids_and_statuses() -> None:
    items = normalize(
        [{"role": "user", "content": "x"}, {"type": "function_call_output", "call_id": "c", "output": "o"}]
    )
    assert items[0]["id"].startswith("msg_") and items[1]["id"].startswith("fco_")
    assert {i["status"] for i in items} == {"completed"}
    assert items[0]["content"] == [{"type": "input_text", "text": "x"}]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type", "file_search"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type", "computer_use_preview"),
        ({"tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name", "tools[0].name"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "web_search_call"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "item_reference"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
            "input_file",
        ),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", "call_id"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice", "web_search_preview"),
        ({"truncation": "auto"}, "truncation", "truncation"),
        ({"conversation": "conv_1"}, "conversation", "Conversations"),
        ({"background": True, "store": False}, "background", "store"),
        ({"background": True, "stream": True}, "stream", "background"),
        ({"input": [], "instructions": None}, "input", "input"),
    ],
)
def test_unsupported_parts_are_a_400_naming_them(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidField) as info:
        chat({"input": "x", **body})
    assert info.value.status == 400 and info.value.param == param
    assert words in info.value.message


def test_tool_choice_forms() -> None:
    named, _ = chat(
        {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}}
    )
    assert to_generation(named).tool_choice == "get_weather"
    other = {**WEATHER, "name": "other"}
    allowed = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "other"}]}
    narrowed, _ = chat({"input": "x", "tools": [WEATHER, other], "tool_choice": allowed})
    gen = to_generation(narrowed)
    assert [t["function"]["name"] for t in gen.tools] == ["other"] and gen.tool_choice == "required"
    none, _ = chat({"input": "x", "tools": [WEATHER], "tool_choice": "none"})
    assert to_generation(none).tools == []


def test_text_format_and_reasoning_map_onto_chat() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"format": {"type": "json_schema", "name": "a", "schema": schema, "strict": True}}
    req, _ = chat({"input": "x", "text": fmt, "reasoning": {"effort": "high"}, "max_output_tokens": 50})
    gen = to_generation(req)
    assert gen.json_schema == schema and gen.thinking == "enabled" and gen.sampling.max_tokens == 50
    assert req.thinking is not None and req.thinking.clear_thinking is True
    off, _ = chat(
        {"input": "x", "reasoning": {"effort": "minimal"}, "text": {"format": {"type": "json_object"}}}
    )
    assert to_generation(off).thinking == "disabled" and to_generation(off).json_object
    kept, _ = chat({"input": "x", "reasoning": {"effort": "low", "context": "all_turns"}})
    assert kept.thinking is not None and kept.thinking.clear_thinking is False
    plain, _ = chat({"input": "x"})
    assert to_generation(plain).thinking is None


def test_chat_side_errors_are_renamed_to_the_responses_fields() -> None:
    _, where = chat(
        {
            "input": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}],
            "instructions": "s",
        }
    )
    err = in_responses_terms(
        InvalidRequest("bad image at messages[2].content[0]", param="messages[2].content[0]"), where
    )
    assert err.param == "input[1].content[0]" and "input[1].content[0]" in err.message
    schema = in_responses_terms(InvalidField("bad", param="response_format.json_schema.schema"), where)
    assert schema.param == "text.format.schema"
    tool = in_responses_terms(InvalidField("bad", param="tools[0].function.parameters"), where)
    assert tool.param == "tools[0].parameters"
    assert in_responses_terms(InvalidRequest("no images", param="messages"), where).param == "input"
