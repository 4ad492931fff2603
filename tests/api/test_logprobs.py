"""Chat ``logprobs`` / ``top_logprobs`` on the embedded model, through the openai SDK and raw HTTP.

Greedy decoding makes the properties exact: one entry per generated token, the entries' tokens
spell the answer, the alternatives are as many as asked for and in descending order, a chosen
token listed among them has the same logprob there, and the stream's entries equal the
non-stream ones. (The logprobs are the model's own distribution, before the repetition penalty
of the model's sampling defaults, so the chosen token need not be the first alternative.)
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from openai import OpenAI

from .sse import post_stream
from .wire_schema import assert_chunk, assert_completion

MODEL = "glm-4.5-flash"
ASK: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Count from 1 to 30, separated by commas."}],
    "temperature": 0,
    "max_tokens": 8,
}


@pytest.mark.parametrize("top", [0, 3])
def test_non_stream_logprobs_cover_every_token_of_the_answer(client: OpenAI, top: int) -> None:
    completion = client.chat.completions.create(**ASK, logprobs=True, top_logprobs=top)
    choice = completion.choices[0]
    entries = choice.logprobs.content if choice.logprobs else None

    assert entries is not None
    assert choice.finish_reason == "length"
    assert len(entries) == completion.usage.completion_tokens == ASK["max_tokens"]
    assert "".join(e.token for e in entries) == choice.message.content
    for entry in entries:
        assert entry.logprob <= 0 and math.isfinite(entry.logprob)
        assert bytes(entry.bytes) == entry.token.encode()  # an ASCII answer: whole characters
        assert len(entry.top_logprobs) == top
        alternatives = [a.logprob for a in entry.top_logprobs]
        assert alternatives == sorted(alternatives, reverse=True)
        if top:
            assert entry.logprob <= entry.top_logprobs[0].logprob + 1e-6
            listed = {a.token: a.logprob for a in entry.top_logprobs}
            if entry.token in listed:
                assert listed[entry.token] == pytest.approx(entry.logprob)


def test_raw_body_with_logprobs_validates_against_the_spec(http: httpx.Client) -> None:
    response = http.post("chat/completions", json={**ASK, "logprobs": True, "top_logprobs": 2})

    assert response.status_code == 200, response.text
    assert_completion(response.json())
    assert response.json()["choices"][0]["logprobs"]["refusal"] is None


def test_stream_logprobs_ride_on_their_deltas_and_equal_the_non_stream_ones(
    client: OpenAI, http: httpx.Client
) -> None:
    whole = client.chat.completions.create(**ASK, logprobs=True, top_logprobs=2).choices[0]
    raw = post_stream(http, {**ASK, "logprobs": True, "top_logprobs": 2})

    assert raw.status_code == 200
    streamed: list[dict[str, Any]] = []
    text = ""
    for chunk in raw.chunks:
        assert_chunk(chunk)
        for choice in chunk["choices"]:
            content = choice["delta"].get("content") or ""
            logprobs = choice.get("logprobs")
            if logprobs is not None:
                assert content, "logprobs come with the delta they score"
                assert "".join(e["token"] for e in logprobs["content"]) == content
                streamed += logprobs["content"]
            text += content
    assert text == whole.message.content
    assert [e["token"] for e in streamed] == [e.token for e in whole.logprobs.content]
    assert [e["logprob"] for e in streamed] == pytest.approx([e.logprob for e in whole.logprobs.content])


def test_without_logprobs_there_are_none(client: OpenAI) -> None:
    """``top_logprobs`` alone does not turn them on (OpenAI needs ``logprobs: true`` for it)."""
    plain = client.chat.completions.create(**ASK)
    alone = client.chat.completions.create(**ASK, top_logprobs=2)

    assert plain.choices[0].logprobs is None and alone.choices[0].logprobs is None


def test_top_logprobs_past_twenty_is_a_400(http: httpx.Client) -> None:
    response = http.post("chat/completions", json={**ASK, "logprobs": True, "top_logprobs": 21})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "top_logprobs"
