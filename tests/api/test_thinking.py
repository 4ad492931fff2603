"""Thinking mode (API.md §2.1 `thinking`, §3.3 reasoning): reasoning first, then the answer.

`thinking: {"type": "enabled"}` (openai: through `extra_body`) puts the model's reasoning in
`reasoning_content` ahead of any `content`, and counts it in `reasoning_tokens`; disabled or absent,
`reasoning_content` is null on every message and delta (sent, so the SDKs' objects have it).
`clear_thinking` (default true) drops the reasoning of earlier turns from the prompt, which shows
in `prompt_tokens`.

Half of `max_tokens` is the reasoning budget, so the requests here leave room for an answer after it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI
from zhipuai import ZhipuAI

from .server_process import GlmServe
from .sse import assert_chunk_sequence, assert_framing, finish_chunk, joined_content, post_stream
from .wire_schema import assert_chunk, assert_completion, sdk_dump

MODEL = "glm-4.5-flash"
QUESTION = "一个篮子里有3个苹果，又放进去5个，现在有几个？"
MAX_TOKENS = 300
ENABLED = {"thinking": {"type": "enabled"}}
THINKING: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": QUESTION}],
    "temperature": 0,
    "max_tokens": MAX_TOKENS,
    **ENABLED,
}
PLAIN: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "What is 3 + 5? Answer in one short sentence."}],
    "temperature": 0,
    "max_tokens": 24,
}


def joined_reasoning(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("reasoning_content") or ""
        for chunk in chunks
        for choice in chunk.get("choices", [])
    )


def assert_reasoning_first(kinds: list[str]) -> None:
    """`kinds` lists, per delta, "reasoning", "content" or "both"; all reasoning strictly before content."""
    assert "both" not in kinds, f"a delta carried reasoning and content together: {kinds}"
    assert "reasoning" in kinds, "no reasoning_content delta"
    assert "content" in kinds, "no content delta after the reasoning"
    last_reasoning = max(i for i, kind in enumerate(kinds) if kind == "reasoning")
    first_content = kinds.index("content")
    assert last_reasoning < first_content, f"reasoning after content: {kinds}"


def delta_kind(reasoning: str | None, content: str | None) -> str:
    if reasoning and content:
        return "both"
    return "reasoning" if reasoning else "content" if content else "empty"


def assert_reasoning_usage(usage: dict[str, Any]) -> None:
    reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning_tokens <= usage["completion_tokens"], usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], usage


@pytest.fixture(scope="module")
def thought(http: httpx.Client) -> dict[str, Any]:
    """The non-streamed greedy thinking answer, which the streamed forms must reproduce."""
    response = http.post("chat/completions", json=THINKING)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_docs_stream_example(client: OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"thinking": {"type": "enabled"}},
        stream=True,
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    kinds, reasoning, content = [], [], []
    for chunk in response:
        assert_chunk(sdk_dump(chunk))
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning_piece = getattr(delta, "reasoning_content", None)
        if reasoning_piece:
            print(reasoning_piece, end="", flush=True)
            reasoning.append(reasoning_piece)
        if delta.content:
            print(delta.content, end="", flush=True)
            content.append(delta.content)
        kinds.append(delta_kind(reasoning_piece, delta.content))
    print()

    assert_reasoning_first(kinds)
    assert "".join(reasoning).strip()
    assert "".join(content).strip()


def test_non_stream(thought: dict[str, Any]) -> None:
    assert_completion(thought)
    message = thought["choices"][0]["message"]
    assert isinstance(message["reasoning_content"], str) and message["reasoning_content"].strip()
    assert message["content"].strip(), "the answer after the reasoning is empty"
    assert thought["choices"][0]["finish_reason"] in ("stop", "length")
    assert_reasoning_usage(thought["usage"])


def test_sdk_non_stream(client: OpenAI, thought: dict[str, Any]) -> None:
    body = {k: v for k, v in THINKING.items() if k != "thinking"}

    completion = client.chat.completions.create(**body, extra_body=ENABLED)

    assert_completion(sdk_dump(completion))
    message = completion.choices[0].message
    expected = thought["choices"][0]["message"]
    assert getattr(message, "reasoning_content", None) == expected["reasoning_content"]
    assert message.content == expected["content"]
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert (
        completion.usage.completion_tokens_details.reasoning_tokens
        == (thought["usage"]["completion_tokens_details"]["reasoning_tokens"])
    )


def test_raw_stream_matches_non_stream(http: httpx.Client, thought: dict[str, Any]) -> None:
    raw = post_stream(http, THINKING)

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    usage = assert_chunk_sequence(raw.chunks, include_usage=False)
    deltas = [choice["delta"] for chunk in raw.chunks for choice in chunk["choices"]]
    assert_reasoning_first([delta_kind(d.get("reasoning_content"), d.get("content")) for d in deltas])
    expected = thought["choices"][0]
    assert joined_reasoning(raw.chunks) == expected["message"]["reasoning_content"]
    assert joined_content(raw.chunks) == expected["message"]["content"]
    assert finish_chunk(raw.chunks)["choices"][0]["finish_reason"] == expected["finish_reason"]
    assert_reasoning_usage(usage)
    assert usage["completion_tokens_details"] == thought["usage"]["completion_tokens_details"]


def test_raw_stream_include_usage(http: httpx.Client) -> None:
    raw = post_stream(http, {**THINKING, "stream_options": {"include_usage": True}})

    assert raw.status_code == 200, raw.text
    assert_framing(raw.text)
    usage = assert_chunk_sequence(raw.chunks, include_usage=True)
    assert_reasoning_usage(usage)
    assert joined_reasoning(raw.chunks).strip() and joined_content(raw.chunks).strip()


def test_stream_helper_keeps_content_and_reasoning(client: OpenAI) -> None:
    body = {k: v for k, v in THINKING.items() if k != "thinking"}

    content_deltas, reasoning_deltas = [], []
    with client.chat.completions.stream(**body, extra_body=ENABLED) as stream:
        for event in stream:
            if event.type == "chunk":
                assert_chunk(sdk_dump(event.chunk))
                for choice in event.chunk.choices:
                    reasoning_deltas.append(getattr(choice.delta, "reasoning_content", None) or "")
            elif event.type == "content.delta":
                content_deltas.append(event.delta)
        final = stream.get_final_completion()

    message = final.choices[0].message
    assert message.role == "assistant"
    assert message.content and message.content.strip()
    assert message.content == "".join(content_deltas)
    assert getattr(message, "reasoning_content", None) == "".join(reasoning_deltas) != ""
    assert final.usage is not None and final.usage.completion_tokens_details is not None
    reasoning_tokens = final.usage.completion_tokens_details.reasoning_tokens
    assert reasoning_tokens is not None and 0 < reasoning_tokens <= final.usage.completion_tokens


NO_THINKING: dict[str, dict[str, Any]] = {
    "absent": {},
    "null": {"thinking": None},
    "disabled": {"thinking": {"type": "disabled"}},
}


@pytest.mark.parametrize("name", list(NO_THINKING))
def test_no_reasoning_when_not_enabled(http: httpx.Client, name: str) -> None:
    response = http.post("chat/completions", json={**PLAIN, **NO_THINKING[name]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert_completion(body)
    message = body["choices"][0]["message"]
    assert message.get("reasoning_content", "absent") is None, message
    assert message["content"].strip()
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


@pytest.mark.parametrize("name", list(NO_THINKING))
def test_no_reasoning_deltas_when_not_enabled(http: httpx.Client, name: str) -> None:
    raw = post_stream(http, {**PLAIN, **NO_THINKING[name]})

    assert raw.status_code == 200, raw.text
    usage = assert_chunk_sequence(raw.chunks, include_usage=False)
    deltas = [choice["delta"] for chunk in raw.chunks for choice in chunk["choices"]]
    assert all(d.get("reasoning_content", "absent") is None for d in deltas), deltas
    assert raw.content.strip()
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_zhipuai_thinking(server: GlmServe, thought: dict[str, Any]) -> None:
    zhipu = ZhipuAI(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0, timeout=120)

    response: Any = zhipu.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        thinking={"type": "enabled"},
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    message = response.choices[0].message
    print(message.reasoning_content, message.content, sep="\n---\n")
    assert message.reasoning_content == thought["choices"][0]["message"]["reasoning_content"]
    assert message.content == thought["choices"][0]["message"]["content"]
    assert response.usage.completion_tokens_details["reasoning_tokens"] > 0


def test_zhipuai_thinking_stream(server: GlmServe) -> None:
    zhipu = ZhipuAI(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0, timeout=120)

    stream: Any = zhipu.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        thinking={"type": "enabled"},
        temperature=0,
        max_tokens=MAX_TOKENS,
        stream=True,
    )

    kinds = []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        kinds.append(delta_kind(getattr(delta, "reasoning_content", None), delta.content))
    assert_reasoning_first(kinds)


# A long earlier reasoning: clear_thinking must keep it out of the prompt, token for token.
EARLIER_REASONING = "First I add the ones, then I check the sum twice to be sure. " * 20


def history(reasoning_key: str | None) -> list[dict[str, Any]]:
    answer: dict[str, Any] = {"role": "assistant", "content": "1 + 1 = 2."}
    if reasoning_key is not None:
        answer[reasoning_key] = EARLIER_REASONING
    return [
        {"role": "user", "content": "What is 1 + 1?"},
        answer,
        {"role": "user", "content": "And 2 + 2?"},
    ]


def prompt_tokens(http: httpx.Client, messages: list[dict[str, Any]], thinking: dict[str, Any]) -> int:
    body = {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": 2, "thinking": thinking}
    response = http.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert_completion(response.json())
    count: int = response.json()["usage"]["prompt_tokens"]
    return count


@pytest.mark.parametrize("thinking_type", ["enabled", "disabled"])
@pytest.mark.parametrize("reasoning_key", ["reasoning_content", "reasoning"])
def test_clear_thinking_drops_earlier_reasoning(
    http: httpx.Client, reasoning_key: str, thinking_type: str
) -> None:
    without = prompt_tokens(http, history(None), {"type": thinking_type})

    cleared_by_default = prompt_tokens(http, history(reasoning_key), {"type": thinking_type})
    cleared = prompt_tokens(http, history(reasoning_key), {"type": thinking_type, "clear_thinking": True})
    kept = prompt_tokens(http, history(reasoning_key), {"type": thinking_type, "clear_thinking": False})

    assert cleared_by_default == cleared == without
    assert kept > without, f"clear_thinking false must keep the earlier {reasoning_key} in the prompt"


def test_thinking_message_echoed_back(client: OpenAI) -> None:
    """A thinking answer's own message, `model_dump()`ed into the next turn as Zhipu's docs do."""
    body = {k: v for k, v in THINKING.items() if k != "thinking"}
    first = client.chat.completions.create(**body, extra_body=ENABLED)
    echoed = first.choices[0].message.model_dump()
    assert echoed.get("reasoning_content"), "precondition: the first answer has reasoning"

    second = client.chat.completions.create(
        model=MODEL,
        messages=[*body["messages"], echoed, {"role": "user", "content": "再放进去2个呢？"}],
        extra_body=ENABLED,
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    assert_completion(sdk_dump(second))
    assert getattr(second.choices[0].message, "reasoning_content", None)
    assert second.choices[0].finish_reason in ("stop", "length")
