"""Structured output (API.md §2.1 `response_format`): json_object, json_schema and `parse()`.

Zhipu documents only `json_object`; `json_schema` is OpenAI's, and `chat.completions.parse()` sends
it. Generation is grammar-constrained, so the content must parse, and validate, whenever the model
finishes within max_tokens ("stop").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import openai
import pytest
from jsonschema import Draft202012Validator
from openai import OpenAI
from pydantic import BaseModel
from zhipuai import ZhipuAI

from .reference_tokens import TokenCounter
from .server_process import GlmServe
from .sse import assert_chunk_sequence, assert_framing, finish_chunk, post_stream
from .test_errors import check_error_response
from .wire_schema import assert_chunk, assert_completion, sdk_dump

MODEL = "glm-4.5-flash"
MAX_TOKENS = 96
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "integer"},
        "unit": {"type": "string", "enum": ["apples", "pears"]},
        "explanation": {"type": "string", "maxLength": 80},
    },
    "required": ["answer", "unit", "explanation"],
    "additionalProperties": False,
}
JSON_SCHEMA: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "A basket has 3 apples and 5 more are added. How many now?"}],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": ANSWER_SCHEMA, "strict": True},
    },
    "temperature": 0,
    "max_tokens": MAX_TOKENS,
}
JSON_OBJECT: dict[str, Any] = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "Reply in JSON."},
        {"role": "user", "content": "Describe a cat with its name and age."},
    ],
    "response_format": {"type": "json_object"},
    "temperature": 0,
    "max_tokens": MAX_TOKENS,
}


def assert_schema_valid(content: str, schema: dict[str, Any]) -> Any:
    value = json.loads(content)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert not errors, f"content {content!r} violates the schema: {errors}"
    return value


def create(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert_completion(result)
    assert result["choices"][0]["finish_reason"] == "stop", f"cut off before the JSON ended: {result}"
    return result


def test_json_object(http: httpx.Client, token_counter: TokenCounter) -> None:
    body = create(http, JSON_OBJECT)

    content = body["choices"][0]["message"]["content"]
    print(content)
    assert isinstance(json.loads(content), dict)
    # The JSON's own tokens and the end-of-turn token the model stopped with, exactly.
    assert body["usage"]["completion_tokens"] == token_counter.count_text(content) + 1, content


def test_json_object_stream(http: httpx.Client) -> None:
    expected = create(http, JSON_OBJECT)["choices"][0]["message"]["content"]

    raw = post_stream(http, JSON_OBJECT)

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    assert_chunk_sequence(raw.chunks, include_usage=False)
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == "stop"
    assert raw.content == expected
    assert isinstance(json.loads(raw.content), dict)


def test_zhipuai_json_object(server: GlmServe) -> None:
    """Zhipu's own structured-output form, through its SDK."""
    zhipu = ZhipuAI(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0, timeout=120)

    response: Any = zhipu.chat.completions.create(**JSON_OBJECT)

    assert response.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(response.choices[0].message.content), dict)


def test_json_schema(http: httpx.Client) -> None:
    body = create(http, JSON_SCHEMA)

    content = body["choices"][0]["message"]["content"]
    print(content)
    assert_schema_valid(content, ANSWER_SCHEMA)


def test_json_schema_stream(http: httpx.Client) -> None:
    expected = create(http, JSON_SCHEMA)["choices"][0]["message"]["content"]

    raw = post_stream(http, JSON_SCHEMA)

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    assert_chunk_sequence(raw.chunks, include_usage=False)
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == "stop"
    assert raw.content == expected
    assert_schema_valid(raw.content, ANSWER_SCHEMA)


def test_json_schema_sdk_stream(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(**JSON_SCHEMA, stream=True))

    for chunk in chunks:
        assert_chunk(sdk_dump(chunk))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert_schema_valid(content, ANSWER_SCHEMA)


NESTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "landmarks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "built": {"type": ["integer", "null"]}},
                "required": ["name", "built"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["city", "landmarks"],
    "additionalProperties": False,
}


def test_json_schema_nested(http: httpx.Client) -> None:
    request = {
        **JSON_SCHEMA,
        "messages": [{"role": "user", "content": "北京有哪些著名地标？"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "City", "schema": NESTED_SCHEMA}},
        "max_tokens": 160,
    }

    body = create(http, request)

    assert_schema_valid(body["choices"][0]["message"]["content"], NESTED_SCHEMA)


class City(BaseModel):
    name: str
    country: str
    population: int
    continent: Literal["Africa", "Asia", "Europe", "North America", "South America", "Oceania"]


PARSE: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Describe Paris: name, country, population and continent."}],
    "temperature": 0,
    "max_tokens": MAX_TOKENS,
}


def test_sdk_parse(client: OpenAI) -> None:
    completion = client.chat.completions.parse(**PARSE, response_format=City)

    message = completion.choices[0].message
    print(message.content)
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(message.parsed, City) and message.refusal is None
    # pydantic's lax parsing would take "population": "2140000" or extra keys; the strict schema the
    # SDK sent (every field required, no others, population an integer) must hold on the wire.
    strict = {**City.model_json_schema(), "additionalProperties": False}
    assert strict["required"] == list(City.model_fields)
    assert_schema_valid(message.content or "", strict)


def test_sdk_stream_helper_parse(client: OpenAI) -> None:
    with client.chat.completions.stream(**PARSE, response_format=City) as stream:
        for event in stream:
            if event.type == "chunk":
                assert_chunk(sdk_dump(event.chunk))
        final = stream.get_final_completion()

    assert isinstance(final.choices[0].message.parsed, City)


@dataclass(frozen=True)
class Invalid:
    """A response_format refused with 400 ``1214``: the exact `param` and a word the message must contain."""

    response_format: Any
    param: str
    mentions: str


def json_schema(**fields: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "Out", **fields}}


SCHEMA_PARAM = "response_format.json_schema.schema"
INVALID: dict[str, Invalid] = {
    "type-objekt": Invalid(json_schema(schema={"type": "objekt"}), SCHEMA_PARAM, "schema"),
    "properties-5": Invalid(json_schema(schema={"type": "object", "properties": 5}), SCHEMA_PARAM, "schema"),
    "required-not-a-list": Invalid(
        json_schema(schema={"type": "object", "required": "a"}), SCHEMA_PARAM, "schema"
    ),
    "schema-missing": Invalid(json_schema(), "response_format", "schema"),
    "json_schema-missing": Invalid({"type": "json_schema"}, "response_format", "json_schema"),
    "unknown-type": Invalid({"type": "xml"}, "response_format.type", "type"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_response_format(client: OpenAI, name: str, stream: bool) -> None:
    case = INVALID[name]

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            **{**JSON_SCHEMA, "max_tokens": 4, "response_format": case.response_format}, stream=stream
        )

    error = check_error_response(caught.value.response, 400, "1214")  # the README: an invalid field
    assert error["param"] == case.param, error
    assert case.mentions in error["message"], error
