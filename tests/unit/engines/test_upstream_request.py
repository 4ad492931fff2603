"""Generation → upstream request body per kind, and the Zhipu JWT glmserve signs."""

from __future__ import annotations

import jwt

from glmserve.engines.base import Generation, Sampling
from glmserve.engines.upstream.request import ZhipuToken, credential, request_body

TOOLS = [
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "g"}},
]


def gen(**kw: object) -> Generation:
    sampling = Sampling(temperature=0.6, top_p=0.95, defaulted=frozenset({"temperature", "top_p"}))
    g = Generation(messages=[{"role": "user", "content": "hi"}], sampling=sampling)
    for k, v in kw.items():
        setattr(g, k, v)
    return g


def test_openai_body_streams_with_usage_and_leaves_defaults_out() -> None:
    body = request_body(gen(), "openai", "gpt-x")
    assert body == {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_explicit_sampling_passes() -> None:
    g = gen(sampling=Sampling(0.2, 0.5, max_tokens=9, stop=["x"], seed=1, presence_penalty=0.1))
    body = request_body(g, "vllm", "m")
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"], body["seed"]) == (
        0.2,
        0.5,
        9,
        ["x"],
        1,
    )
    assert body["presence_penalty"] == 0.1 and "frequency_penalty" not in body
    assert request_body(g, "openai", "m")["max_completion_tokens"] == 9


def test_tools_and_choice() -> None:
    assert request_body(gen(tools=TOOLS, tool_choice="auto"), "vllm", "m")["tool_choice"] == "auto"
    named = request_body(gen(tools=TOOLS, tool_choice="g"), "sglang", "m")
    assert named["tool_choice"] == {"type": "function", "function": {"name": "g"}}
    assert named["tools"] == TOOLS


def test_zhipu_gets_auto_only_and_the_named_function() -> None:
    body = request_body(gen(tools=TOOLS, tool_choice="g"), "zhipu", "glm-4.6")
    assert body["tool_choice"] == "auto" and [t["function"]["name"] for t in body["tools"]] == ["g"]
    assert "stream_options" not in body


def test_structured_output() -> None:
    schema = {"type": "object"}
    body = request_body(gen(json_schema=schema), "llamacpp", "m")
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert request_body(gen(json_schema=schema), "zhipu", "m")["response_format"] == {"type": "json_object"}
    assert request_body(gen(json_object=True), "openai", "m")["response_format"] == {"type": "json_object"}


def test_thinking_per_kind() -> None:
    assert request_body(gen(thinking="enabled"), "zhipu", "m")["thinking"] == {"type": "enabled"}
    assert request_body(gen(thinking="disabled"), "vllm", "m")["chat_template_kwargs"] == {
        "enable_thinking": False
    }
    assert request_body(gen(thinking="disabled"), "ollama", "m")["reasoning_effort"] == "none"
    openai = request_body(gen(thinking="enabled"), "openai", "m")
    assert "thinking" not in openai and "chat_template_kwargs" not in openai


def test_zhipu_ranges_like_its_sdk() -> None:
    greedy = request_body(gen(sampling=Sampling(0.0, 1.0)), "zhipu", "m")
    assert (greedy["temperature"], greedy["do_sample"], greedy["top_p"]) == (0.01, False, 0.99)
    hot = request_body(gen(sampling=Sampling(1.5, 0.0)), "zhipu", "m")
    assert (hot["temperature"], hot["top_p"]) == (0.99, 0.01) and "do_sample" not in hot


def test_zhipu_jwt_is_what_the_sdk_signs_and_is_reused() -> None:
    now = [1_000_000.0]
    token = ZhipuToken("abc123.s3cret", clock=lambda: now[0])
    first = token()
    header = jwt.get_unverified_header(first)
    assert header["sign_type"] == "SIGN" and header["alg"] == "HS256"
    payload = jwt.decode(first, "s3cret", algorithms=["HS256"], options={"verify_exp": False})
    assert payload == {"api_key": "abc123", "exp": 1_000_000_000 + 210_000, "timestamp": 1_000_000_000}
    now[0] += 100
    assert token() == first
    now[0] += 100
    assert token() != first


def test_credentials() -> None:
    assert credential("openai", None, "key")() is None
    assert credential("openai", "sk-1", "jwt")() == "sk-1", "jwt applies to zhipu only"
    assert credential("zhipu", "a.b", "key")() == "a.b"
    assert credential("zhipu", "a.b", "jwt")().count(".") == 2


def test_logprobs_are_asked_for_where_the_api_has_them() -> None:
    assert request_body(gen(logprobs=3), "vllm", "m")["top_logprobs"] == 3
    assert request_body(gen(logprobs=0), "openai", "m")["logprobs"] is True
    assert "top_logprobs" not in request_body(gen(logprobs=0), "openai", "m")
    assert "logprobs" not in request_body(gen(logprobs=2), "zhipu", "m")
    assert "logprobs" not in request_body(gen(), "vllm", "m")
