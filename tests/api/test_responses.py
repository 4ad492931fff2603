"""The OpenAI Responses API (``client.responses``) against the embedded model, through the real SDK.

Every object is validated against the spec's ``Response`` schema and every streamed event against
its own event schema. ``glm-4.5-flash`` with a few output tokens: these tests check the protocol,
not the model's answers (greedy decoding keeps them repeatable).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from .accounts import admin, create_key
from .conftest import REQUEST_TIMEOUT_S
from .responses_wire import assert_response, post_stream, streamed_text
from .server_process import GlmServe
from .wire_schema import assert_valid, sdk_dump

MODEL = "glm-4.5-flash"
SMALL = {"model": MODEL, "temperature": 0, "max_output_tokens": 8}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def raw(server: GlmServe) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.v1_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
        yield http


def test_create_text_and_instructions(v1_client: OpenAI, raw: httpx.Client) -> None:
    response = v1_client.responses.create(**SMALL, input="Say hello.", instructions="Answer in English.")
    body = sdk_dump(response)
    assert_response(body)
    assert response.status in ("completed", "incomplete") and response.instructions == "Answer in English."
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant"
    assert response.output_text == message.content[0].text != ""
    usage = response.usage
    assert usage is not None and usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens >= 0 and usage.output_tokens_details.reasoning_tokens == 0
    again = raw.post("responses", json={**SMALL, "input": "Say hello.", "instructions": "Answer in English."})
    assert again.status_code == 200 and again.headers["content-type"].startswith("application/json")
    assert_response(again.json())


def test_items_in_and_input_items_back(client: OpenAI) -> None:
    items: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "Remember the word kiwi."}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Remembered."}]},
        {"type": "message", "role": "user", "content": "Which word?"},
    ]
    response = client.responses.create(**SMALL, input=items)
    assert_response(sdk_dump(response))
    listed = client.responses.input_items.list(response.id, order="asc")
    page = listed.model_dump(exclude_unset=True)
    assert_valid("ResponseItemList", {**page, "object": "list"})
    assert [(i.type, i.role) for i in listed.data] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert listed.data[2].content[0].text == "Which word?" and all(i.id for i in listed.data)
    newest_first = client.responses.input_items.list(response.id, limit=2)
    assert [i.id for i in newest_first.data] == [
        listed.data[2].id,
        listed.data[1].id,
    ] and newest_first.has_more


def test_stream_events_deltas_and_final_response(v1_client: OpenAI, raw: httpx.Client) -> None:
    body = {**SMALL, "max_output_tokens": 24, "input": "Reply with one word: yes."}  # ends by itself
    events = post_stream(raw, body)
    final = events[-1]["response"]
    assert streamed_text(events) == final["output_text"]
    kinds = [e["type"] for e in events]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    with v1_client.responses.stream(**body) as stream:
        deltas = [ev.delta for ev in stream if ev.type == "response.output_text.delta"]
        done = stream.get_final_response()
    assert "".join(deltas) == done.output_text != ""
    assert done.usage is not None and done.usage.input_tokens == final["usage"]["input_tokens"]
    assert v1_client.responses.retrieve(done.id).output_text == done.output_text


def test_max_output_tokens_makes_it_incomplete(raw: httpx.Client) -> None:
    events = post_stream(
        raw, {**SMALL, "max_output_tokens": 2, "input": "Write a long story about a dragon."}
    )
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["usage"]["output_tokens"] == 2


def test_function_call_round_trip(client: OpenAI) -> None:
    first = client.responses.create(
        **{**SMALL, "max_output_tokens": 40},
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
    )
    assert_response(sdk_dump(first))
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments)["city"]
    assert call.id.startswith("fc_") and call.call_id
    follow = client.responses.create(
        **SMALL,
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 22 C"}],
    )
    assert_response(sdk_dump(follow))
    assert follow.previous_response_id == first.id and follow.output
    # The same conversation sent as items (store: false, as Codex does) is the same prompt.
    explicit = client.responses.create(
        **SMALL,
        store=False,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 22 C"},
        ],
    )
    assert explicit.usage is not None and follow.usage is not None
    assert explicit.usage.input_tokens == follow.usage.input_tokens
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(explicit.id)  # store: false keeps nothing


def test_previous_response_id_rebuilds_the_conversation(client: OpenAI) -> None:
    one = client.responses.create(**SMALL, input="My name is Zed.", instructions="Be brief.")
    two = client.responses.create(**SMALL, input="What is my name?", previous_response_id=one.id)
    flat = client.responses.create(
        **SMALL,
        store=False,
        input=[
            {"role": "user", "content": "My name is Zed."},
            {"role": "assistant", "content": one.output_text},
            {"role": "user", "content": "What is my name?"},
        ],
    )
    assert two.usage is not None and flat.usage is not None and one.usage is not None
    assert two.usage.input_tokens == flat.usage.input_tokens > one.usage.input_tokens  # no instructions
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(**SMALL, input="x", previous_response_id="resp_nope")
    assert missing.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_retrieve_delete_and_ownership(client: OpenAI, server: GlmServe) -> None:
    created = client.responses.create(**SMALL, input="Hi.")
    got = client.responses.retrieve(created.id)
    assert sdk_dump(got) == sdk_dump(created)
    other_key, _ = create_key(server, name=f"responses-other-{secrets.token_hex(3)}")
    with OpenAI(api_key=other_key, base_url=server.v1_url, max_retries=0) as other:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.input_items.list(created.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(created.id)
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


class Person(BaseModel):
    name: str
    age: int


def test_text_format_json_schema(client: OpenAI) -> None:
    parsed = client.with_options(timeout=600).responses.parse(  # constrained decoding is slower
        **{**SMALL, "max_output_tokens": 20},
        input="Ann is 30 years old. Give her as JSON.",
        text_format=Person,
    )
    assert isinstance(parsed.output_parsed, Person)
    assert json.loads(parsed.output_text) == parsed.output_parsed.model_dump()
    assert (
        parsed.text is not None
        and parsed.text.format is not None
        and parsed.text.format.type == "json_schema"
    )


def test_reasoning_items_when_thinking(raw: httpx.Client) -> None:
    body = {**SMALL, "max_output_tokens": 24, "input": "What is 2 + 3?", "reasoning": {"effort": "low"}}
    events = post_stream(raw, body)
    final = events[-1]["response"]
    reasoning = final["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["content"][0]["type"] == "reasoning_text"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    assert deltas == reasoning["content"][0]["text"] != ""
    assert 0 < final["usage"]["output_tokens_details"]["reasoning_tokens"] <= final["usage"]["output_tokens"]
    assert final["reasoning"] == {"effort": "low", "summary": None}
    summary = post_stream(raw, {**body, "reasoning": {"effort": "low", "summary": "auto"}})
    kinds = {e["type"] for e in summary}
    assert "response.reasoning_summary_text.delta" in kinds and "response.reasoning_text.delta" not in kinds
    summarized = "".join(e["delta"] for e in summary if e["type"] == "response.reasoning_summary_text.delta")
    assert summary[-1]["response"]["output"][0]["summary"] == [{"type": "summary_text", "text": summarized}]
    off = raw.post("responses", json={**body, "reasoning": {"effort": "minimal"}}).json()
    assert [item["type"] for item in off["output"]] == ["message"]


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
        (
            {
                "tools": [
                    {
                        "type": "computer_use_preview",
                        "display_width": 1,
                        "display_height": 1,
                        "environment": "linux",
                    }
                ]
            },
            "tools[0].type",
        ),
        ({"input": [{"type": "web_search_call", "id": "ws_1", "status": "completed"}]}, "input[0].type"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
    ],
)
def test_unsupported_parts_are_a_400_naming_them(
    raw: httpx.Client, patch: dict[str, Any], param: str
) -> None:
    response = raw.post("responses", json={**SMALL, "input": "x", **patch})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert_valid("ErrorResponse", response.json())
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_background_runs_and_can_be_cancelled(client: OpenAI) -> None:
    queued = client.responses.create(**SMALL, input="Say hi.", background=True)
    assert queued.status == "queued" and queued.background
    assert_response(sdk_dump(queued))
    done = client.responses.retrieve(queued.id)
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    while done.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.1)
        done = client.responses.retrieve(queued.id)
    assert done.status in ("completed", "incomplete") and done.output_text
    assert_response(sdk_dump(done))
    assert client.responses.cancel(done.id).status == done.status  # finished: unchanged
    long = client.responses.create(
        **{**SMALL, "max_output_tokens": 200}, input="Write an essay.", background=True
    )
    cancelled = client.responses.cancel(long.id)
    assert cancelled.status == "cancelled" and client.responses.retrieve(long.id).status == "cancelled"
    assert_response(sdk_dump(cancelled))
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(client.responses.create(**SMALL, input="x").id)  # not a background one


def test_input_tokens_count(client: OpenAI) -> None:
    created = client.responses.create(**SMALL, input="How many tokens is this?", instructions="Be brief.")
    counted = client.responses.input_tokens.count(
        model=MODEL, input="How many tokens is this?", instructions="Be brief."
    )
    assert counted.object == "response.input_tokens"
    assert created.usage is not None and counted.input_tokens == created.usage.input_tokens


def test_usage_rows_record_protocol_responses(server: GlmServe) -> None:
    key, key_id = create_key(server, name=f"responses-usage-{secrets.token_hex(3)}")
    with OpenAI(api_key=key, base_url=server.paas_url, max_retries=0) as sdk:
        answer = sdk.responses.with_raw_response.create(**SMALL, input="Hi.")
        request_id = answer.headers["x-request-id"]
        usage = answer.parse().usage
    with admin(server) as http:
        rows = http.get("/admin/usage", params={"request_id": request_id}).json()["data"]
    (row,) = rows
    assert (row["protocol"], row["key_id"], row["model"], row["status"]) == ("responses", key_id, MODEL, 200)
    assert usage is not None and row["prompt_tokens"] == usage.input_tokens
    assert row["completion_tokens"] == usage.output_tokens
