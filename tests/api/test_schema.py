"""Responses and stream chunks validate against OpenAI's published schemas (shared/spec)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from .server_process import GlmServe
from .sse import assert_framing, post_stream
from .wire_schema import assert_chunk, assert_completion, sdk_dump

REQUEST: dict[str, Any] = {
    "model": "glm-4.5-flash",
    "messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Name three primary colors."},
    ],
    "temperature": 0,
    "max_tokens": 24,
}


@pytest.fixture(params=["paas", "v1"])
def raw_http(request: pytest.FixtureRequest, server: GlmServe) -> Iterator[httpx.Client]:
    """Raw HTTP on each of the two base paths, which serve the same routes."""
    base = server.paas_url if request.param == "paas" else server.v1_url
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as raw:
        yield raw


def test_raw_completion_validates(raw_http: httpx.Client) -> None:
    response = raw_http.post("chat/completions", json=REQUEST)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_completion(body)
    assert body["object"] == "chat.completion"
    assert isinstance(body["request_id"], str) and body["request_id"]
    choice = body["choices"][0]
    assert choice["logprobs"] is None
    assert choice["message"]["refusal"] is None
    usage = body["usage"]
    assert isinstance(usage["prompt_tokens_details"]["cached_tokens"], int)
    assert isinstance(usage["completion_tokens_details"]["reasoning_tokens"], int)


@pytest.mark.parametrize("include_usage", [False, True])
def test_raw_stream_chunks_validate(raw_http: httpx.Client, include_usage: bool) -> None:
    body = {**REQUEST, "stream_options": {"include_usage": include_usage}}
    raw = post_stream(raw_http, body)

    assert raw.status_code == 200, raw.text
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert_framing(raw.text)
    assert raw.chunks
    for chunk in raw.chunks:
        assert_chunk(chunk)


def test_sdk_completion_dump_validates(client: OpenAI) -> None:
    completion = client.chat.completions.create(**REQUEST)

    assert_completion(sdk_dump(completion))


def test_sdk_stream_chunk_dumps_validate(client: OpenAI) -> None:
    stream = client.chat.completions.create(**REQUEST, stream=True)

    chunks = [sdk_dump(chunk) for chunk in stream]
    assert chunks
    for chunk in chunks:
        assert_chunk(chunk)


def test_stream_helper_final_completion_matches_create(client: OpenAI) -> None:
    expected = client.chat.completions.create(**REQUEST)

    deltas = []
    with client.chat.completions.stream(**REQUEST) as stream:
        for event in stream:
            if event.type == "chunk":
                assert_chunk(sdk_dump(event.chunk))
            elif event.type == "content.delta":
                deltas.append(event.delta)
        final = stream.get_final_completion()

    message = final.choices[0].message
    assert message.role == "assistant"  # a role repeated in later deltas would concatenate here
    assert message.content == "".join(deltas) == expected.choices[0].message.content
    assert final.choices[0].finish_reason == expected.choices[0].finish_reason
    assert final.usage is not None and expected.usage is not None
    assert final.usage.completion_tokens == expected.usage.completion_tokens
    assert final.usage.prompt_tokens == expected.usage.prompt_tokens
