"""POST /completions (legacy) with the openai SDK: text in, text out, no chat template."""

from __future__ import annotations

import httpx
import openai
import pytest

MODEL = "glm-4.5-flash"


def test_a_prompt_is_continued(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model=MODEL, prompt="def add(a, b):\n    return", max_tokens=4, temperature=0
    )
    (choice,) = response.choices
    assert (
        response.object == "text_completion" and response.model == MODEL and response.id.startswith("cmpl-")
    )
    assert choice.text and choice.finish_reason in ("length", "stop") and choice.logprobs is None
    assert response.usage is not None and 0 < response.usage.completion_tokens <= 4
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_streaming_matches_the_whole_answer(client: openai.OpenAI) -> None:
    prompt = "The days of the week are Monday, Tuesday,"
    whole = client.completions.create(model=MODEL, prompt=prompt, max_tokens=6, temperature=0)
    stream = client.completions.create(
        model=MODEL,
        prompt=prompt,
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert (
        chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    )  # type: ignore[union-attr]


def test_several_prompts_echo_and_token_prompts(client: openai.OpenAI, http: httpx.Client) -> None:
    prompts = ["One, two,", "Red, green,"]
    response = client.completions.create(model=MODEL, prompt=prompts, max_tokens=3, temperature=0, echo=True)
    assert [c.index for c in response.choices] == [0, 1]
    for prompt, choice in zip(prompts, response.choices, strict=True):
        assert choice.text.startswith(prompt) and len(choice.text) > len(prompt)
    tokens = http.post("tokenize", json={"model": MODEL, "prompt": prompts[0]}).json()["tokens"]
    by_tokens = client.completions.create(model=MODEL, prompt=tokens, max_tokens=3, temperature=0, echo=True)
    assert by_tokens.choices[0].text == response.choices[0].text


def test_logprobs_in_the_legacy_shape(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model=MODEL, prompt="1, 2, 3,", max_tokens=3, temperature=0, logprobs=2
    )
    logprobs = response.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.token_logprobs and logprobs.top_logprobs
    assert "".join(logprobs.tokens) == response.choices[0].text
    assert all(lp <= 0 for lp in logprobs.token_logprobs)
    assert all(1 <= len(top) <= 2 for top in logprobs.top_logprobs)
    assert logprobs.text_offset == [
        sum(len(t) for t in logprobs.tokens[:i]) for i in range(len(logprobs.tokens))
    ]


BAD = [
    ("suffix", {"prompt": "def f(", "suffix": "):"}, "suffix"),
    ("n", {"prompt": "x", "n": 2}, "n"),
    ("best-of", {"prompt": "x", "best_of": 3}, "best_of"),
    ("logprobs-range", {"prompt": "x", "logprobs": 6}, "logprobs"),
    ("echo-logprobs", {"prompt": "x", "echo": True, "logprobs": 1}, "echo"),
    ("empty-prompt", {"prompt": ""}, "prompt"),
    ("zero-tokens", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ("logit-bias", {"prompt": "x", "logit_bias": {"50256": -100}}, "logit_bias"),
    ("embedding-model", {"prompt": "x", "model": "embedding-2"}, "model"),
]


@pytest.mark.parametrize(("body", "param"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_refusals_are_clear_400s(http: httpx.Client, body: dict[str, object], param: str) -> None:
    response = http.post("completions", json={"model": MODEL, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "1214" and error["message"]
