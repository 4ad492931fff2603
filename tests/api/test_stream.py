"""Greedy decoding, streaming versus non-streaming, finish reasons, stop strings and usage placement."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI

from .sse import assert_chunk_sequence, assert_framing, finish_chunk, post_stream

MODEL = "glm-4.5-flash"
SHORT: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
    "temperature": 0,
    "max_tokens": 32,
}
LONG_QUESTION: dict[str, Any] = {
    "model": MODEL,
    "messages": [
        {
            "role": "user",
            "content": "Explain in detail how a compiler works, covering lexing, parsing, "
            "type checking, optimisation and code generation, with examples.",
        }
    ],
    "temperature": 0,
    "max_tokens": 5,
}
COUNT: dict[str, Any] = {
    "model": MODEL,
    "messages": [
        {"role": "user", "content": "Count from 1 to 20, separated by commas. Output only the numbers."}
    ],
    "temperature": 0,
    "max_tokens": 64,
}


def create(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_greedy_repeats_itself(client: OpenAI) -> None:
    first = client.chat.completions.create(**SHORT)
    second = client.chat.completions.create(**SHORT)

    assert first.choices[0].message.content == second.choices[0].message.content


def test_sdk_stream_joins_to_non_stream_content(client: OpenAI) -> None:
    expected = client.chat.completions.create(**SHORT)

    chunks = list(client.chat.completions.create(**SHORT, stream=True))

    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == expected.choices[0].message.content
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == [expected.choices[0].finish_reason]


def test_raw_stream_matches_non_stream(http: httpx.Client) -> None:
    expected = create(http, SHORT)

    raw = post_stream(http, SHORT)

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    usage = assert_chunk_sequence(raw.chunks, include_usage=False)
    assert raw.content == expected["choices"][0]["message"]["content"]
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == expected["choices"][0]["finish_reason"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert usage[key] == expected["usage"][key], key


def test_max_tokens_stops_with_length(http: httpx.Client) -> None:
    body = create(http, LONG_QUESTION)

    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == LONG_QUESTION["max_tokens"]
    assert body["choices"][0]["message"]["content"]


def test_max_tokens_stops_stream_with_length(http: httpx.Client) -> None:
    raw = post_stream(http, LONG_QUESTION)

    assert raw.status_code == 200, raw.text
    usage = assert_chunk_sequence(raw.chunks, include_usage=False)
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == "length"
    assert usage["completion_tokens"] == LONG_QUESTION["max_tokens"]


def test_natural_end_is_stop(http: httpx.Client) -> None:
    request = {
        **SHORT,
        "messages": [{"role": "user", "content": "Reply with just the word OK."}],
        "max_tokens": 64,
    }

    body = create(http, request)

    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] < request["max_tokens"]


@pytest.fixture(scope="module")
def counted(http: httpx.Client) -> str:
    """The unstopped greedy count; the stop tests cut it at the first "7"."""
    content: str = create(http, COUNT)["choices"][0]["message"]["content"]
    assert "7" in content, f"precondition: the model should count past 7 within 64 tokens: {content!r}"
    return content


@pytest.mark.parametrize("stop", [["7"], "7"], ids=["list", "string"])
def test_stop_string_cuts_output(http: httpx.Client, counted: str, stop: Any) -> None:
    body = create(http, {**COUNT, "stop": stop})

    content = body["choices"][0]["message"]["content"]
    assert "7" not in content
    assert body["choices"][0]["finish_reason"] == "stop"
    assert content == counted[: counted.index("7")]


def test_stop_string_cuts_stream(http: httpx.Client, counted: str) -> None:
    raw = post_stream(http, {**COUNT, "stop": ["7"]})

    assert raw.status_code == 200, raw.text
    assert_chunk_sequence(raw.chunks, include_usage=False)
    assert "7" not in raw.content
    assert raw.content == counted[: counted.index("7")]
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == "stop"


def test_include_usage_puts_usage_on_trailing_empty_chunk(http: httpx.Client) -> None:
    expected = create(http, SHORT)

    raw = post_stream(http, {**SHORT, "stream_options": {"include_usage": True}})

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    usage = assert_chunk_sequence(raw.chunks, include_usage=True)
    assert raw.chunks[-1]["choices"] == []
    assert all(c.get("usage") is None for c in raw.chunks[:-1])
    assert raw.content == expected["choices"][0]["message"]["content"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert usage[key] == expected["usage"][key], key


@pytest.mark.parametrize(
    "stream_options", [None, {"include_usage": False}], ids=["absent", "include_usage-false"]
)
def test_without_include_usage_usage_rides_on_finish_chunk(
    http: httpx.Client, stream_options: dict[str, bool] | None
) -> None:
    body = dict(SHORT) if stream_options is None else {**SHORT, "stream_options": stream_options}

    raw = post_stream(http, body)

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    usage = assert_chunk_sequence(raw.chunks, include_usage=False)
    assert finish_chunk(raw.chunks)["usage"] is usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_sdk_include_usage(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(**SHORT, stream=True, stream_options={"include_usage": True})
    )

    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens > 0
