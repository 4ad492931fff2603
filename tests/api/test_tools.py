"""Function calling (API.md §2.4, §3.4): tool_choice, the follow-up turn, streamed tool calls.

With `tool_choice` "required" or a named function the output is grammar-constrained, so the
arguments must always parse and validate against the function's JSON schema. Zhipu's server-side
tool types (web_search, retrieval, mcp) have no backend here and are refused with 400/1214.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from jsonschema import Draft202012Validator
from openai import OpenAI
from zhipuai import ZhipuAI
from zhipuai.core._errors import APIRequestFailedError

from .reference_tokens import TokenCounter
from .server_process import GlmServe
from .sse import assert_chunk_sequence, assert_framing, finish_chunk, post_stream
from .test_errors import check_error_response
from .wire_schema import assert_completion, sdk_dump

MODEL = "glm-4.5-flash"
MAX_TOKENS = 64
WEATHER_QUESTION = "北京今天天气怎么样？"
WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "城市名称"}},
    "required": ["city"],
}
WEATHER_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "获取指定城市的天气信息",
            "parameters": WEATHER_PARAMETERS,
        },
    }
]
BOOKING_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "people": {"type": "integer", "minimum": 1, "maximum": 20},
        "meal": {"type": "string", "enum": ["breakfast", "lunch", "dinner"]},
        "restaurant": {"type": "string"},
    },
    "required": ["people", "meal", "restaurant"],
    "additionalProperties": False,
}
# Zero-argument functions. OpenAI's spec: "Omitting `parameters` defines a function with an empty
# parameter list", so get_time's arguments must be {} just as get_date's closed schema demands;
# list_alarms's open object admits any keys, as JSON Schema says.
CLOSED_EMPTY: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
OPEN_EMPTY: dict[str, Any] = {"type": "object", "properties": {}}
MIXED_TOOLS: list[dict[str, Any]] = [
    *WEATHER_TOOLS,
    {
        "type": "function",
        "function": {
            "name": "book_table",
            "description": "Book a restaurant table",
            "parameters": BOOKING_PARAMETERS,
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
    {
        "type": "function",
        "function": {"name": "get_date", "description": "Today", "parameters": CLOSED_EMPTY},
    },
    {"type": "function", "function": {"name": "list_alarms", "parameters": OPEN_EMPTY}},
]
SCHEMAS = {
    "get_weather": WEATHER_PARAMETERS,
    "book_table": BOOKING_PARAMETERS,
    "get_time": CLOSED_EMPTY,
    "get_date": CLOSED_EMPTY,
    "list_alarms": OPEN_EMPTY,
}
WEATHER: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": WEATHER_QUESTION}],
    "tools": WEATHER_TOOLS,
    "temperature": 0,
    "max_tokens": MAX_TOKENS,
}
WEATHER_RESULT = json.dumps({"city": "北京", "weather": "晴", "temperature": "25°C"}, ensure_ascii=False)
# A longer result for the same call: the prompt must grow by exactly the tokens it adds.
OTHER_RESULT = json.dumps(
    {"city": "北京", "weather": "小雨", "temperature": "17°C", "advice": "出门记得带伞，路面湿滑"},
    ensure_ascii=False,
)


def named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def assert_valid_arguments(name: str, arguments: Any) -> dict[str, Any]:
    """The arguments are a JSON string whose value validates against the function's schema."""
    assert isinstance(arguments, str), f"arguments must be a JSON string, got {arguments!r}"
    value = json.loads(arguments)
    errors = [e.message for e in Draft202012Validator(SCHEMAS[name]).iter_errors(value)]
    assert not errors, f"{name} arguments {arguments!r} violate the schema: {errors}"
    assert isinstance(value, dict)
    return value


def assert_tool_call_message(body: dict[str, Any], name: str) -> dict[str, Any]:
    """One function call to `name`, content "", finish_reason tool_calls; returns the call."""
    assert_completion(body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    assert choice["message"]["content"] == "", choice["message"]
    calls = choice["message"]["tool_calls"]
    assert len(calls) >= 1, choice["message"]
    call: dict[str, Any] = calls[0]
    assert call["type"] == "function"
    assert call["id"].startswith("call_"), call
    assert call["function"]["name"] == name, call
    assert_valid_arguments(name, call["function"]["arguments"])
    assert len({c["id"] for c in calls}) == len(calls), "tool call ids must be unique"
    return call


def create(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def result_tokens_added(counter: TokenCounter) -> int:
    """Prompt tokens OTHER_RESULT has beyond WEATHER_RESULT (each sits between newlines in the prompt)."""
    return counter.count_text(OTHER_RESULT) - counter.count_text(WEATHER_RESULT)


def raw_call(call: dict[str, Any]) -> str:
    """The text a grammar-constrained call is generated as (translate.py's ``call_schema``)."""
    fn = call["function"]
    return f'{{"name": "{fn["name"]}", "arguments": {fn["arguments"]}}}'


def test_docs_weather_example(client: OpenAI, token_counter: TokenCounter) -> None:
    """Zhipu's function-calling guide: call, run the function, send the result back."""
    tools = WEATHER_TOOLS
    messages: list[Any] = [{"role": "user", "content": WEATHER_QUESTION}]

    response = client.chat.completions.create(
        model=MODEL, messages=messages, tools=tools, tool_choice="auto", temperature=0, max_tokens=MAX_TOKENS
    )

    assert_completion(sdk_dump(response))
    message = response.choices[0].message
    print(message)
    assert response.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls, "the weather question should make the model call get_weather"
    tool_call = message.tool_calls[0]
    assert tool_call.type == "function" and tool_call.function.name == "get_weather"
    assert "北京" in assert_valid_arguments("get_weather", tool_call.function.arguments)["city"]

    messages.append(response.choices[0].message.model_dump())
    messages.append({"role": "tool", "content": WEATHER_RESULT, "tool_call_id": tool_call.id})
    final = client.chat.completions.create(
        model=MODEL, messages=messages, tools=tools, temperature=0, max_tokens=MAX_TOKENS
    )

    print(final.choices[0].message)
    assert_completion(sdk_dump(final))
    assert final.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # The tool's answer is in the model's prompt: another answer changes it by exactly its tokens.
    messages[-1] = {**messages[-1], "content": OTHER_RESULT}
    other = client.chat.completions.create(
        model=MODEL, messages=messages, tools=tools, temperature=0, max_tokens=1
    )
    assert final.usage is not None and other.usage is not None
    assert other.usage.prompt_tokens - final.usage.prompt_tokens == result_tokens_added(token_counter)


@pytest.fixture(scope="module")
def weather_call(http: httpx.Client) -> dict[str, Any]:
    """The non-streamed "required" weather call: the assistant message the follow-ups echo back."""
    body = create(http, {**WEATHER, "tool_choice": "required"})
    assert_tool_call_message(body, "get_weather")
    message: dict[str, Any] = body["choices"][0]["message"]
    return message


ECHOES = {
    # what different clients put in the assistant message they send back (API.md §2.2)
    "as-received": lambda m: m,
    "zhipu-model_dump": lambda m: {**m, "reasoning_content": None},
    "zai-index": lambda m: {
        **m,
        "tool_calls": [{**c, "index": i} for i, c in enumerate(m["tool_calls"])],
    },
    "openai-model_dump": lambda m: {
        **m,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "reasoning_content": None,
    },
    "content-null": lambda m: {**m, "content": None},
}


def follow_up(call_message: dict[str, Any], result: str = WEATHER_RESULT) -> list[dict[str, Any]]:
    call_id = call_message["tool_calls"][0]["id"]
    return [
        {"role": "user", "content": WEATHER_QUESTION},
        call_message,
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


@pytest.fixture(scope="module")
def follow_up_prompt_tokens(http: httpx.Client, weather_call: dict[str, Any]) -> int:
    """prompt_tokens of the follow-up turn with the call echoed as received."""
    body = create(http, {**WEATHER, "messages": follow_up(weather_call), "max_tokens": 1})
    return int(body["usage"]["prompt_tokens"])


def test_the_tool_result_reaches_the_prompt(
    http: httpx.Client,
    weather_call: dict[str, Any],
    follow_up_prompt_tokens: int,
    token_counter: TokenCounter,
) -> None:
    other = create(http, {**WEATHER, "messages": follow_up(weather_call, OTHER_RESULT), "max_tokens": 1})

    assert other["usage"]["prompt_tokens"] - follow_up_prompt_tokens == result_tokens_added(token_counter)


@pytest.mark.parametrize("echo", list(ECHOES))
def test_follow_up_turn(
    http: httpx.Client, weather_call: dict[str, Any], follow_up_prompt_tokens: int, echo: str
) -> None:
    messages = follow_up(ECHOES[echo](weather_call))

    body = create(http, {**WEATHER, "messages": messages, "max_tokens": 16})

    assert_completion(body)
    assert body["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")
    for call in body["choices"][0]["message"].get("tool_calls") or []:
        assert isinstance(call["function"]["arguments"], str)
    # Whatever extra fields the client echoes, the model sees the same conversation, result included.
    assert body["usage"]["prompt_tokens"] == follow_up_prompt_tokens


@pytest.mark.parametrize("choice", ["required", "named"])
def test_forced_weather_call(http: httpx.Client, token_counter: TokenCounter, choice: str) -> None:
    tool_choice = "required" if choice == "required" else named("get_weather")

    body = create(http, {**WEATHER, "tool_choice": tool_choice})

    call = assert_tool_call_message(body, "get_weather")
    assert json.loads(call["function"]["arguments"])["city"]
    # Every token generated is counted: the call's JSON and the end-of-turn token, exactly.
    assert body["usage"]["completion_tokens"] == token_counter.count_text(raw_call(call)) + 1, call


FORCED_PROMPTS = {
    "book_table": "Book a table for 4 people for dinner at Quanjude.",
    "get_time": "What time is it right now?",
    "get_date": "What's today's date?",
    "list_alarms": "Which alarms have I set?",
    "get_weather": "Is it going to rain in Shanghai?",
}


@pytest.mark.parametrize("name", list(FORCED_PROMPTS))
def test_named_function_follows_its_schema(http: httpx.Client, name: str) -> None:
    messages = [{"role": "user", "content": FORCED_PROMPTS[name]}]

    body = create(http, {**WEATHER, "messages": messages, "tools": MIXED_TOOLS, "tool_choice": named(name)})

    assert_tool_call_message(body, name)


@pytest.mark.parametrize(
    "prompt", ["Book a table for two for lunch at Da Dong.", "预订明天早餐，3个人，在全聚德。"]
)
def test_required_picks_a_tool_that_validates(http: httpx.Client, prompt: str) -> None:
    messages = [{"role": "user", "content": prompt}]

    body = create(http, {**WEATHER, "messages": messages, "tools": MIXED_TOOLS, "tool_choice": "required"})

    assert_completion(body)
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    calls = body["choices"][0]["message"]["tool_calls"]
    assert calls
    for call in calls:
        assert call["function"]["name"] in SCHEMAS, call
        assert_valid_arguments(call["function"]["name"], call["function"]["arguments"])


def test_none_never_calls(http: httpx.Client) -> None:
    body = create(http, {**WEATHER, "tool_choice": "none"})

    assert_completion(body)
    message = body["choices"][0]["message"]
    assert not message.get("tool_calls"), message
    assert message["content"].strip()
    assert body["choices"][0]["finish_reason"] in ("stop", "length")


def tool_call_deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or []
    ]


def accumulate(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rebuild the calls from OpenAI-canonical deltas (API.md §3.4), checking the canonical form."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        assert isinstance(delta.get("index"), int), f"a tool call delta without index: {delta}"
        assert isinstance(delta["function"]["arguments"], str), f"arguments not a string: {delta}"
        if delta["index"] not in calls:
            assert delta["id"].startswith("call_") and delta["type"] == "function", delta
            assert delta["function"]["name"] and delta["function"]["arguments"] == "", delta
            calls[delta["index"]] = {
                "id": delta["id"],
                "type": "function",
                "function": {"name": delta["function"]["name"], "arguments": ""},
            }
        else:
            assert "id" not in delta and "name" not in delta["function"], f"repeated header: {delta}"
            calls[delta["index"]]["function"]["arguments"] += delta["function"]["arguments"]
    assert sorted(calls) == list(range(len(calls))), f"tool call indexes not 0..n-1: {sorted(calls)}"
    return [calls[i] for i in sorted(calls)]


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_raw_stream_tool_call(http: httpx.Client, tool_choice: str) -> None:
    request = {**WEATHER, "tool_choice": tool_choice}
    expected = create(http, request)["choices"][0]["message"]["tool_calls"]

    raw = post_stream(http, request)

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    assert_chunk_sequence(raw.chunks, include_usage=False)
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == "tool_calls"
    assert raw.content == ""
    calls = accumulate(tool_call_deltas(raw.chunks))
    assert [c["function"] for c in calls] == [c["function"] for c in expected]
    for call in calls:
        assert_valid_arguments(call["function"]["name"], call["function"]["arguments"])


def test_stream_helper_final_completion_has_the_calls(client: OpenAI) -> None:
    deltas: list[dict[str, Any]] = []
    done_arguments = []
    with client.chat.completions.stream(**{**WEATHER, "tool_choice": "required"}) as stream:
        for event in stream:
            if event.type == "chunk":
                for choice in event.chunk.choices:
                    deltas += [sdk_dump(call) for call in choice.delta.tool_calls or []]
            elif event.type == "tool_calls.function.arguments.done":
                done_arguments.append(event.arguments)
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.role == "assistant"
    got = [
        {"id": c.id, "type": c.type, "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in choice.message.tool_calls or []
    ]
    assert got == accumulate(deltas)
    assert done_arguments == [c["function"]["arguments"] for c in got]
    assert_valid_arguments("get_weather", got[0]["function"]["arguments"])


def test_sdk_stream_follow_up(
    client: OpenAI, weather_call: dict[str, Any], follow_up_prompt_tokens: int
) -> None:
    """The second turn streamed, as agents built on the openai SDK do."""
    request = {**WEATHER, "messages": follow_up(weather_call), "max_tokens": 16}

    chunks = list(
        client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )

    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1 and finishes[0] in ("stop", "length", "tool_calls")
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == follow_up_prompt_tokens, "the result is in the prompt"


def test_zhipuai_tool_call(server: GlmServe) -> None:
    zhipu = ZhipuAI(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0, timeout=120)

    response: Any = zhipu.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": WEATHER_QUESTION}],
        tools=WEATHER_TOOLS,
        tool_choice="auto",
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert_valid_arguments("get_weather", call.function.arguments)


def function(name: str = "f", parameters: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "description": "d"}
    if parameters is not None:
        spec["parameters"] = parameters
    return {"type": "function", "function": spec}


@dataclass(frozen=True)
class Invalid:
    """A request refused with 400 ``1214`` (an invalid field): the exact `param`, a word in the message."""

    overrides: dict[str, Any]
    param: str
    mentions: str


INVALID: dict[str, Invalid] = {
    "web_search": Invalid(
        {"tools": [{"type": "web_search", "web_search": {"enable": "True", "search_query": "x"}}]},
        "tools[0].type",
        "web_search",
    ),
    "retrieval": Invalid(
        {"tools": [{"type": "retrieval", "retrieval": {"knowledge_id": "123"}}]}, "tools[0].type", "retrieval"
    ),
    "mcp": Invalid(
        {"tools": [{"type": "mcp", "mcp": {"server_label": "s", "server_url": "https://example.com/mcp"}}]},
        "tools[0].type",
        "mcp",
    ),
    "web_search-second": Invalid(
        {"tools": [function(), {"type": "web_search", "web_search": {"enable": "True"}}]},
        "tools[1].type",
        "web_search",
    ),
    "type-objekt": Invalid(
        {"tools": [function(parameters={"type": "objekt"})]}, "tools[0].function.parameters", "tools[0]"
    ),
    "properties-5": Invalid(
        {"tools": [function(parameters={"type": "object", "properties": 5})]},
        "tools[0].function.parameters",
        "tools[0]",
    ),
    "parameters-string": Invalid(
        {"tools": [function(parameters="city")]}, "tools[0].function.parameters", "parameters"
    ),
    "unknown-tool_choice": Invalid(
        {"tools": [function()], "tool_choice": named("no_such_function")}, "tool_choice", "no_such_function"
    ),
    "tool_choice-without-tools": Invalid(
        {"tools": None, "tool_choice": named("get_weather")}, "tool_choice", "get_weather"
    ),
    "tool_choice-bad-string": Invalid(
        {"tools": [function()], "tool_choice": "sometimes"}, "tool_choice", "tool_choice"
    ),
    "name-with-spaces": Invalid({"tools": [function("get weather")]}, "tools[0].function.name", "name"),
    "name-65-chars": Invalid({"tools": [function("f" * 65)]}, "tools[0].function.name", "name"),
    "129-tools": Invalid({"tools": [function(f"f{i}") for i in range(129)]}, "tools", "128"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_tools(client: OpenAI, name: str, stream: bool) -> None:
    case = INVALID[name]
    body = {**WEATHER, "max_tokens": 4, **case.overrides}

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body, stream=stream)

    error = check_error_response(caught.value.response, 400, "1214")
    assert error["param"] == case.param, error
    assert case.mentions in error["message"], error


def test_zhipuai_web_search_tool_is_refused(server: GlmServe) -> None:
    zhipu = ZhipuAI(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0)

    with pytest.raises(APIRequestFailedError) as caught:
        zhipu.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "今天有什么新闻？"}],
            tools=[{"type": "web_search", "web_search": {"enable": "True", "search_query": "新闻"}}],
            max_tokens=4,
        )

    assert caught.value.status_code == 400
    error = check_error_response(caught.value.response, 400, "1214")
    assert "web_search" in error["message"]
