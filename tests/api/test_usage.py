"""Token usage is exact: prompt_tokens and completion_tokens match an independent count.

The reference count renders Qwen2.5's ChatML by hand and tokenizes it with the same GGUF loaded
in this process (reference_tokens.py); the server must agree with it to the token. An answer
that ends by itself (``stop``) has one generated token beyond its text, the end-of-turn token
``<|im_end|>``, counted as llama.cpp and vLLM count it; one cut off (``length``) has none.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI

from .reference_tokens import TokenCounter, render_chatml
from .sse import assert_chunk_sequence, finish_chunk, post_stream

CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "system-and-user": [
        {"role": "system", "content": "你是一个有用的AI助手。"},
        {"role": "user", "content": "你好，请介绍一下你自己。"},
    ],
    "user-only": [{"role": "user", "content": "Write one sentence about the sea."}],
    "multi-turn": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "My name is Lin."},
        {"role": "assistant", "content": "Nice to meet you, Lin."},
        {"role": "user", "content": "What is my name?"},
    ],
}


def request(messages: list[dict[str, str]], max_tokens: int = 8) -> dict[str, Any]:
    return {"model": "glm-4.5-flash", "messages": messages, "temperature": 0, "max_tokens": max_tokens}


def assert_prompt_count(reported: int, expected: int, messages: list[dict[str, str]]) -> None:
    assert reported == expected, (
        f"server prompt_tokens={reported}, reference={expected}, for the prompt\n{render_chatml(messages)!r}"
    )


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_prompt_tokens_match_reference(http: httpx.Client, token_counter: TokenCounter, name: str) -> None:
    messages = CONVERSATIONS[name]
    expected = token_counter.count_chat(messages)

    response = http.post("chat/completions", json=request(messages))

    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert_prompt_count(usage["prompt_tokens"], expected, messages)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 <= usage["prompt_tokens_details"]["cached_tokens"] <= usage["prompt_tokens"]
    assert 0 <= usage["completion_tokens_details"]["reasoning_tokens"] <= usage["completion_tokens"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_prompt_tokens_match_reference(
    http: httpx.Client, token_counter: TokenCounter, include_usage: bool
) -> None:
    messages = CONVERSATIONS["multi-turn"]
    expected = token_counter.count_chat(messages)
    body = {**request(messages), "stream_options": {"include_usage": include_usage}}

    raw = post_stream(http, body)

    assert raw.status_code == 200, raw.text
    usage = assert_chunk_sequence(raw.chunks, include_usage=include_usage)
    assert_prompt_count(usage["prompt_tokens"], expected, messages)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


NATURAL_STOPS = {
    "english": [{"role": "user", "content": "hi"}],
    "chinese": [{"role": "user", "content": "用一句话介绍你自己。"}],
}


@pytest.mark.parametrize("name", list(NATURAL_STOPS))
def test_completion_tokens_of_a_natural_stop_are_the_text_and_its_end(
    http: httpx.Client, token_counter: TokenCounter, name: str
) -> None:
    response = http.post("chat/completions", json=request(NATURAL_STOPS[name], max_tokens=64))

    assert response.status_code == 200, response.text
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop", "the answer must end by itself"
    assert body["usage"]["completion_tokens"] == token_counter.count_text(content) + 1, content


def test_streamed_completion_tokens_of_a_natural_stop(
    http: httpx.Client, token_counter: TokenCounter
) -> None:
    body = {**request(NATURAL_STOPS["english"], max_tokens=64), "stream_options": {"include_usage": True}}

    raw = post_stream(http, body)

    assert raw.status_code == 200, raw.text
    usage = assert_chunk_sequence(raw.chunks, include_usage=True)
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == "stop"
    assert usage["completion_tokens"] == token_counter.count_text(raw.content) + 1, raw.content


def test_completion_tokens_equal_max_tokens_when_cut(client: OpenAI, token_counter: TokenCounter) -> None:
    messages = [{"role": "user", "content": "Describe the water cycle in great detail."}]

    completion = client.chat.completions.create(**request(messages, max_tokens=7))

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert token_counter.count_text(completion.choices[0].message.content or "") == 7
    assert_prompt_count(completion.usage.prompt_tokens, token_counter.count_chat(messages), messages)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 7


def test_repeated_prompt_reports_the_same_prompt_tokens(client: OpenAI) -> None:
    """A prompt-cache hit may raise cached_tokens, but never changes prompt_tokens."""
    messages = CONVERSATIONS["system-and-user"]

    first = client.chat.completions.create(**request(messages))
    second = client.chat.completions.create(**request(messages))

    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens == second.usage.prompt_tokens
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens is not None
    assert second.usage.prompt_tokens_details.cached_tokens <= second.usage.prompt_tokens
