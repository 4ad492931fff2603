"""A second glmserve as a gateway in front of the first (the real embedded model) as its upstream.

Chat, streaming, tools, thinking and structured output through the gateway give the same content
as asking the upstream directly (greedy decoding). ``glm-4.6`` reaches it as a Zhipu upstream
signing JWTs; ``oai`` as an OpenAI one (Zhipu has no ``json_schema``, OpenAI no ``thinking``).

llama.cpp's greedy output for a prompt it has cached can differ from the first, uncached run (the
last prompt token is evaluated alone, not in the prompt batch, and a near-tie may flip), so each
comparison first warms the upstream's cache and then compares two cached runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from .server_process import GlmServe
from .sse import assert_chunk_sequence, assert_framing, post_stream
from .upstream_gateway import UPSTREAM_KEY_ENV, start_gateway

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def gateway(server: GlmServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    upstream = {"base_url": server.v1_url, "api_key_env": UPSTREAM_KEY_ENV, "model": "glm-4.5-flash"}
    table = {
        "glm-4.6": {"deployments": [upstream | {"kind": "zhipu", "auth": "jwt"}]},
        "oai": {"deployments": [upstream | {"kind": "openai"}]},
    }
    with start_gateway(tmp_path_factory.mktemp("gateway"), table, server.api_key) as started:
        yield started


@pytest.fixture(scope="module")
def via(gateway: GlmServe) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    with httpx.Client(base_url=gateway.paas_url, headers=headers, timeout=180) as client:
        yield client


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def both(
    http: httpx.Client, via: httpx.Client, body: dict[str, Any], model: str = "glm-4.6"
) -> tuple[Any, Any]:
    create(http, body | {"model": "glm-4.5-flash"})  # warms the upstream's prompt cache: see the docstring
    gateway = create(via, body | {"model": model})
    direct = create(http, body | {"model": "glm-4.5-flash"})
    assert gateway["model"] == model
    return direct["choices"][0], gateway["choices"][0]


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": 24, **extra}


def test_chat_matches_direct(http: httpx.Client, via: httpx.Client) -> None:
    for model in ("glm-4.6", "oai"):
        direct, gateway = both(http, via, chat("What is the capital of France?"), model)
        assert gateway["message"]["content"] == direct["message"]["content"]
        assert gateway["finish_reason"] == direct["finish_reason"]


def test_stream_matches_direct(http: httpx.Client, via: httpx.Client) -> None:
    body = chat("Count from 1 to 10, separated by commas.")
    post_stream(http, body | {"model": "glm-4.5-flash"})
    direct = post_stream(http, body | {"model": "glm-4.5-flash"})
    for options in (None, {"include_usage": True}):
        extra = {"stream_options": options} if options else {}
        gateway = post_stream(via, body | {"model": "glm-4.6"} | extra)
        assert gateway.status_code == 200
        assert_framing(gateway.text)
        usage = assert_chunk_sequence(gateway.chunks, include_usage=bool(options))
        assert gateway.content == direct.content
        expected = assert_chunk_sequence(direct.chunks, include_usage=False)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            assert usage[key] == expected[key], key


def test_tools_match_direct(http: httpx.Client, via: httpx.Client) -> None:
    body = chat("What's the weather like in Paris right now?", tools=WEATHER, max_tokens=64)
    direct, gateway = both(http, via, body)
    assert gateway["finish_reason"] == direct["finish_reason"]
    assert gateway["message"]["content"] == direct["message"]["content"]
    strip = [{**c, "id": None} for c in direct["message"].get("tool_calls") or []]
    assert [{**c, "id": None} for c in gateway["message"].get("tool_calls") or []] == strip
    forced = chat("Weather in Paris?", tools=WEATHER, tool_choice="required", max_tokens=64)
    direct, gateway = both(http, via, forced, "oai")
    assert gateway["finish_reason"] == direct["finish_reason"] == "tool_calls"
    assert gateway["message"]["tool_calls"][0]["function"] == direct["message"]["tool_calls"][0]["function"]


def test_thinking_matches_direct(http: httpx.Client, via: httpx.Client) -> None:
    body = chat("Is 17 a prime number?", thinking={"type": "enabled"}, max_tokens=48)
    direct, gateway = both(http, via, body)
    assert direct["message"].get("reasoning_content")
    assert gateway["message"].get("reasoning_content") == direct["message"]["reasoning_content"]
    assert gateway["message"]["content"] == direct["message"]["content"]


def test_structured_output_matches_direct(http: httpx.Client, via: httpx.Client) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}
    body = chat("Invent a person. Reply in JSON.", response_format=fmt, max_tokens=48)
    direct, gateway = both(http, via, body, "oai")
    assert gateway["message"]["content"] == direct["message"]["content"]
    json_object = chat("Reply with a JSON object with a key 'ok'.", response_format={"type": "json_object"})
    direct, gateway = both(http, via, json_object)
    assert gateway["message"]["content"] == direct["message"]["content"]


def test_sdk_through_the_gateway(gateway: GlmServe) -> None:
    sdk = OpenAI(api_key=gateway.api_key, base_url=gateway.v1_url, max_retries=0)
    reply = sdk.chat.completions.create(model="glm-4.6", **chat("Say hi."))
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
