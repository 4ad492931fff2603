"""The Anthropic Messages API with the real ``anthropic`` SDK on both prefixes, on the embedded model.

``ANTHROPIC_BASE_URL`` is the server root (``/v1/messages``) or ``/api/anthropic`` (Zhipu's path).
Greedy decoding (``temperature: 0``, sent through ``extra_body``: this SDK has no sampling
arguments) makes streamed and non-stream answers comparable; as in the gateway tests, each
comparison first warms the prompt cache, since llama.cpp's first uncached greedy run can differ.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from jsonschema import validate

from .accounts import admin, create_key
from .server_process import GlmServe

MODEL = "glm-4.5-flash"
GREEDY = {"temperature": 0}
PREFIXES = ("", "/api/anthropic")
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def sdk(server: GlmServe, prefix: str = "", key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=key or server.api_key, base_url=server.root + prefix, max_retries=0, timeout=300
    )


@pytest.fixture(scope="module", params=PREFIXES, ids=["root", "api-anthropic"])
def client(request: pytest.FixtureRequest, server: GlmServe) -> Iterator[anthropic.Anthropic]:
    """Both prefixes, for the basic round trips."""
    with sdk(server, request.param) as made:
        yield made


@pytest.fixture(scope="module")
def zhipu_path(server: GlmServe) -> Iterator[anthropic.Anthropic]:
    """``/api/anthropic`` only, for the rest (the prefixes share every line after routing)."""
    with sdk(server, "/api/anthropic") as made:
        yield made


def usage_row(server: GlmServe, request_id: str) -> dict[str, Any]:
    with admin(server) as http:
        for _ in range(50):
            rows = http.get("/admin/usage", params={"request_id": request_id}).json()["data"]
            if rows:
                return dict(rows[0])
            time.sleep(0.1)
    raise AssertionError(f"no usage row for request {request_id}")


def ask(text: str, max_tokens: int = 12, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def text_of(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**ask("Say hello."), extra_body=GREEDY)
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.id.startswith("msg_")
    assert text_of(message)
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 12
    assert message._request_id  # the SDK reads `request-id`


def test_stream_event_order_and_final_message_equal_non_stream(client: anthropic.Anthropic) -> None:
    body = ask("Count from 1 to 5.", max_tokens=16)
    client.messages.create(**body, extra_body=GREEDY)  # warms the prompt cache: see the docstring
    whole = client.messages.create(**body, extra_body=GREEDY)
    with client.messages.stream(**body, extra_body=GREEDY) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and kinds[-2] == "message_delta"
    inner = kinds[1:-2]
    assert inner[0] == "content_block_start" and inner[-1] == "content_block_stop"
    assert set(inner) <= {"content_block_start", "content_block_delta", "content_block_stop", "text"}
    assert text_of(final) == text_of(whole)
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens
    total = lambda m: m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0)  # noqa: E731
    assert total(final) == total(whole)


def test_multi_turn_with_a_system_prompt(client: anthropic.Anthropic) -> None:
    system = [
        {"type": "text", "text": "You answer in one short sentence.", "cache_control": {"type": "ephemeral"}}
    ]
    messages = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
    ]
    message = client.messages.create(
        model=MODEL, max_tokens=16, system=system, messages=messages, extra_body=GREEDY
    )
    assert text_of(message)
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=messages)
    assert counted.input_tokens == message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0)


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = client.messages.create(
        model=MODEL, max_tokens=48, messages=[question], tools=[WEATHER],
        tool_choice={"type": "any"}, extra_body=GREEDY,
    )  # fmt: skip
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.id.startswith("toolu_") and use.name == "get_weather"
    validate(use.input, WEATHER["input_schema"])
    result = {
        "type": "tool_result",
        "tool_use_id": use.id,
        "content": [{"type": "text", "text": "Sunny, 25 C"}],
    }
    turns = [question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    # tool_choice none: the answer must come from the result (a 0.5B model would happily call again).
    second = client.messages.create(
        model=MODEL,
        max_tokens=24,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=turns,
        extra_body=GREEDY,
    )
    assert second.stop_reason in ("end_turn", "max_tokens") and text_of(second)
    assert all(b.type == "text" for b in second.content)


def test_a_named_tool_streams_one_tool_use_block(zhipu_path: anthropic.Anthropic) -> None:
    client = zhipu_path
    body = ask(
        "Weather in Oslo?",
        max_tokens=48,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    with client.messages.stream(**body, extra_body=GREEDY) as stream:
        final = stream.get_final_message()
    [use] = final.content
    assert use.type == "tool_use" and final.stop_reason == "tool_use"
    validate(use.input, WEATHER["input_schema"])


def test_thinking_blocks_come_first_signed_and_go_back(zhipu_path: anthropic.Anthropic) -> None:
    client = zhipu_path
    body = ask("What is 3 + 5?", max_tokens=48, thinking={"type": "enabled", "budget_tokens": 16})
    message = client.messages.create(**body, extra_body=GREEDY)
    thinking = message.content[0]
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature.startswith("glm1.")
    assert all(b.type != "thinking" for b in message.content[1:])
    with client.messages.stream(**body, extra_body=GREEDY) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].type == "thinking" and streamed.content[0].signature.startswith("glm1.")
    # The signed thinking block goes back with the next turn and is accepted.
    follow = [
        {"role": "user", "content": "What is 3 + 5?"},
        {"role": "assistant", "content": message.content},
        {"role": "user", "content": "And 2 + 2?"},
    ]
    again = client.messages.create(model=MODEL, max_tokens=8, messages=follow, extra_body=GREEDY)
    assert again.content


def test_thinking_budget_bounds_the_reasoning(server: GlmServe, zhipu_path: anthropic.Anthropic) -> None:
    body = ask(
        "Explain why the sky is blue.", max_tokens=40, thinking={"type": "enabled", "budget_tokens": 6}
    )
    raw = zhipu_path.messages.with_raw_response.create(**body, extra_body=GREEDY)
    message = raw.parse()
    assert message.content[0].type == "thinking"
    row = usage_row(server, raw.headers["request-id"])
    assert 0 < row["reasoning_tokens"] <= 6  # the budget, not max_tokens // 2
    assert message.usage.output_tokens == row["completion_tokens"] > row["reasoning_tokens"]  # then an answer


def test_count_tokens_equals_the_prompt_count_of_the_same_request(zhipu_path: anthropic.Anthropic) -> None:
    client = zhipu_path
    cases: list[dict[str, Any]] = [
        {"messages": [{"role": "user", "content": "Hello there, how are you?"}]},
        {"messages": [{"role": "user", "content": "Weather in Rome?"}], "tools": [WEATHER]},
        {
            "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [WEATHER],
            "tool_choice": {"type": "any"},
        },
        {
            "messages": [{"role": "user", "content": "2+2?"}],
            "thinking": {"type": "enabled", "budget_tokens": 4},
        },
    ]
    for case in cases:
        counted = client.messages.count_tokens(model=MODEL, **case)
        made = client.messages.create(model=MODEL, max_tokens=6, extra_body=GREEDY, **case)
        assert counted.input_tokens == made.usage.input_tokens + (made.usage.cache_read_input_tokens or 0), (
            case
        )


def test_stop_sequences(zhipu_path: anthropic.Anthropic) -> None:
    client = zhipu_path
    body = ask("Count from 1 to 9, separated by commas.", max_tokens=40)
    free = client.messages.create(**body, extra_body=GREEDY)
    text = text_of(free)
    assert "4" in text, text
    stopped = client.messages.create(**body, stop_sequences=["4"], extra_body=GREEDY)
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "4"
    assert "4" not in text_of(stopped)


def test_each_error_class(server: GlmServe) -> None:
    bad = sdk(server, "/api/anthropic", key="0123456789abcdef.nope")
    with bad, pytest.raises(anthropic.AuthenticationError) as denied:
        bad.messages.create(**ask("hi"))
    assert denied.value.type == "authentication_error"
    with sdk(server, "/api/anthropic") as client:
        with pytest.raises(anthropic.BadRequestError) as unknown:
            client.messages.create(**ask("hi", model="no-such-model"))
        assert unknown.value.type == "invalid_request_error" and "no-such-model" in str(
            unknown.value.api_message
        )
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(**ask("hi", tools=[{"type": "web_search_20250305", "name": "web_search"}]))
        with pytest.raises(anthropic.NotFoundError):
            client.post("/v1/no-such-route", body={}, cast_to=httpx.Response)
        with pytest.raises(anthropic.ContentTooLargeError):
            client.messages.create(**ask("x" * (9 * 1024 * 1024)))
    key, _ = create_key(server, name="messages-limits", rpm=1, models=[MODEL])
    with sdk(server, key=key) as limited:
        with pytest.raises(anthropic.PermissionDeniedError):
            limited.messages.create(**ask("hi", model="glm-4.6"))
        limited.messages.create(**ask("hi", max_tokens=1))
        with pytest.raises(anthropic.RateLimitError) as slow:
            limited.messages.create(**ask("hi", max_tokens=1))
    assert slow.value.type == "rate_limit_error" and slow.value.response.headers["retry-after"]


def test_usage_rows_record_the_messages_protocol(server: GlmServe) -> None:
    key, key_id = create_key(server, name=f"messages-usage-{secrets.token_hex(3)}")
    with sdk(server, key=key) as client:
        made = client.messages.with_raw_response.create(**ask("hi", max_tokens=2))
    message = made.parse()
    row = usage_row(server, made.headers["request-id"])
    assert (row["protocol"], row["key_id"], row["model"], row["status"]) == ("messages", key_id, MODEL, 200)
    assert row["completion_tokens"] == message.usage.output_tokens
    assert row["prompt_tokens"] == message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0)


def test_models_list_and_retrieve_through_the_anthropic_sdk(client: anthropic.Anthropic) -> None:
    """``client.models.list()`` / ``retrieve`` (the key as ``x-api-key``): Anthropic's fields."""
    page = client.models.list()
    ids = [m.id for m in page.data]

    assert "glm-4.6" in ids and len(ids) == len(set(ids))
    assert page.has_more is False and page.first_id == ids[0] and page.last_id == ids[-1]
    assert all(m.type == "model" and m.display_name == m.id for m in page.data)
    assert page.data[0].created_at.tzinfo is not None  # parsed from RFC 3339
    assert client.models.retrieve("glm-4.6").id == "glm-4.6"
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("glm-0-no-such-model")
    assert caught.value.status_code == 404


@pytest.mark.parametrize("name", ["claude-opus-4-6", "claude-haiku-4-5-20251001"])
def test_claude_code_default_model_names_are_served_by_their_tier(
    client: anthropic.Anthropic, name: str
) -> None:
    """Claude Code without ``ANTHROPIC_MODEL`` sends its own ``claude-*`` names: they reach the
    tier's model (``claude_tiers``) and the answer says the name that was asked for."""
    message = client.messages.create(
        model=name, max_tokens=4, messages=[{"role": "user", "content": "Say hi."}]
    )
    counted = client.messages.count_tokens(model=name, messages=[{"role": "user", "content": "Say hi."}])

    assert message.model == name
    assert message.content and message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens > 0 and counted.input_tokens > 0
