"""The ``anthropic`` deployment kind: a second glmserve as a gateway in front of Anthropic-compatible
upstreams — a fake one (faults, headers, signatures) and the first glmserve's ``/api/anthropic``.

Both Messages clients (the anthropic SDK) and chat-completions clients (the openai SDK) are served
from it. ``claude-*`` names reach the models through aliases, as the README shows for Claude Code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from jsonschema import validate

from .fake_anthropic import ANSWER, CACHED, COUNTED, SIGNATURE, FakeAnthropic
from .server_process import GlmServe
from .upstream_gateway import UPSTREAM_KEY_ENV, start_gateway

FAST = {"connect": 1.0, "first_byte": 5.0, "between_chunks": 5.0}
QUICK = {"retries": 1, "backoff_s": 0.05, "backoff_max_s": 0.1}
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CHAT_WEATHER = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "weather", "parameters": WEATHER["input_schema"]},
    }
]
BETA = "interleaved-thinking-2025-05-14"
EMBEDDED = "glm-4.5-flash"


def dep(url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "anthropic", "base_url": url, "model": model, "api_key_env": UPSTREAM_KEY_ENV,
        "timeouts": FAST, "health_interval_s": 0, **extra,
    }  # fmt: skip


def table(fake: FakeAnthropic, server: GlmServe) -> dict[str, dict[str, Any]]:
    solo = {"retry": {"retries": 0}, "breaker": {"failures": 0}}
    faults = ("overloaded", "rate_limited", "bad_request", "zhipu_1113", "error_mid")
    return {
        "fake-ok": {"deployments": [dep(fake.root, "ok")], "aliases": ["claude-sonnet-4-6"]},
        "fake-bearer": {"deployments": [dep(fake.root, "ok-bearer", auth="bearer")]},
        "fake-thinking": {"deployments": [dep(fake.root, "thinking")]},
        **{f"fake-{name}": {**solo, "deployments": [dep(fake.root, name)]} for name in faults},
        "fake-fallback": {
            "retry": QUICK,
            "breaker": {"failures": 0},
            "deployments": [dep(fake.root, "overloaded"), dep(fake.root, "ok-fallback", priority=1)],
        },
        "via-glm": {
            "deployments": [dep(f"{server.root}/api/anthropic", EMBEDDED, timeouts={"first_byte": 280})],
            "aliases": ["claude-haiku-4-5"],
        },
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as started:
        yield started


@pytest.fixture(scope="module")
def gateway(
    server: GlmServe, fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlmServe]:
    # The upstream key is the first server's static key: the fake takes any, the first server that one.
    with start_gateway(
        tmp_path_factory.mktemp("anthropic-gw"), table(fake, server), server.api_key
    ) as started:
        yield started


@pytest.fixture(scope="module")
def messages(gateway: GlmServe) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key=gateway.api_key, base_url=f"{gateway.root}/api/anthropic", max_retries=0, timeout=300
    ) as client:
        yield client


@pytest.fixture(scope="module")
def chat(gateway: GlmServe) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=gateway.api_key, base_url=gateway.v1_url, max_retries=0, timeout=300
    ) as client:
        yield client


def ask(model: str, text: str = "say hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": text}], **extra}


def text_of(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_messages_clients_through_an_anthropic_upstream(
    messages: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    fake.reset()
    made = messages.messages.create(
        **ask("claude-sonnet-4-6", system="be brief"), extra_headers={"anthropic-beta": BETA}
    )
    assert (text_of(made), made.model, made.stop_reason) == (ANSWER, "claude-sonnet-4-6", "end_turn")
    assert (made.usage.input_tokens, made.usage.cache_read_input_tokens) == (10, CACHED)
    [sent] = fake.requests_for("ok")
    assert sent.headers["x-api-key"] and "authorization" not in sent.headers
    sdk_version = messages.default_headers["anthropic-version"]  # what the client sent, unchanged
    assert (sent.headers["anthropic-version"], sent.headers["anthropic-beta"]) == (sdk_version, BETA)
    assert (sent.body["system"], sent.body["max_tokens"], sent.body["stream"]) == ("be brief", 32, True)
    with messages.messages.stream(**ask("fake-ok")) as stream:
        final = stream.get_final_message()
    assert text_of(final) == ANSWER and final.usage.output_tokens == made.usage.output_tokens


def test_chat_clients_through_an_anthropic_upstream(chat: openai.OpenAI, fake: FakeAnthropic) -> None:
    fake.reset()
    reply = chat.chat.completions.create(model="fake-ok", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == ANSWER and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        10 + CACHED, len(ANSWER.split(" ")),
    )  # fmt: skip
    [sent] = fake.requests_for("ok")
    assert sent.body["max_tokens"] == 8192  # Anthropic requires one; the chat client sent none
    called = chat.chat.completions.create(
        model="fake-ok",
        messages=[{"role": "user", "content": "weather?"}],
        tools=CHAT_WEATHER,
        tool_choice="required",
    )  # type: ignore[arg-type]
    [call] = called.choices[0].message.tool_calls or []
    assert called.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Beijing"}'
    assert fake.requests_for("ok")[-1].body["tool_choice"] == {"type": "any"}
    streamed = chat.chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == ANSWER


def test_bearer_auth(messages: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    messages.messages.create(**ask("fake-bearer"))
    sent = fake.requests_for("ok-bearer")[-1]
    assert sent.headers["authorization"].startswith("Bearer ") and "x-api-key" not in sent.headers


def test_upstream_thinking_keeps_its_signature_both_ways(
    messages: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    body = ask("fake-thinking", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2000})
    made = messages.messages.create(**body)
    thinking = made.content[0]
    assert thinking.type == "thinking" and thinking.signature == SIGNATURE
    with messages.messages.stream(**body) as stream:
        assert stream.get_final_message().content[0].signature == SIGNATURE
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
    follow = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [thinking, use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "cold"}]},
    ]
    messages.messages.create(**{**body, "messages": follow}, tools=[WEATHER])
    sent = fake.requests_for("thinking")[-1].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": thinking.thinking,
        "signature": SIGNATURE,
    }
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


def test_faults(messages: anthropic.Anthropic, chat: openai.OpenAI) -> None:
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        messages.messages.create(**ask("fake-overloaded"))
    assert overloaded.value.type == "overloaded_error"
    with pytest.raises(openai.APIStatusError) as unavailable:
        chat.chat.completions.create(model="fake-overloaded", messages=[{"role": "user", "content": "hi"}])
    assert unavailable.value.status_code == 503
    assert text_of(messages.messages.create(**ask("fake-fallback"))) == ANSWER
    with pytest.raises(anthropic.RateLimitError):
        messages.messages.create(**ask("fake-rate_limited"))
    with pytest.raises(anthropic.BadRequestError) as bad:
        messages.messages.create(**ask("fake-bad_request"))
    assert "upstream says no" in str(bad.value.api_message)
    with pytest.raises(anthropic.InternalServerError) as refused:  # the upstream account is out of balance
        messages.messages.create(**ask("fake-zhipu_1113"))
    assert refused.value.status_code == 502
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as mid,
        messages.messages.stream(**ask("fake-error_mid")) as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert "content_block_delta" in seen and mid.value.type == "overloaded_error"


def test_count_tokens_asks_the_upstream(messages: anthropic.Anthropic) -> None:
    counted = messages.messages.count_tokens(model="fake-ok", messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens == COUNTED


def test_a_second_glmserve_as_the_upstream(
    server: GlmServe, messages: anthropic.Anthropic, chat: openai.OpenAI
) -> None:
    with anthropic.Anthropic(
        api_key=server.api_key, base_url=server.root, max_retries=0, timeout=300
    ) as direct:
        body = ask(EMBEDDED, "Name three colors.", max_tokens=12)
        greedy = {"temperature": 0}
        direct.messages.create(**body, extra_body=greedy)  # warms the prompt cache (see test_messages_sdk)
        expected = text_of(direct.messages.create(**body, extra_body=greedy))
        through = messages.messages.create(**{**body, "model": "claude-haiku-4-5"}, extra_body=greedy)
        assert text_of(through) == expected and through.model == "claude-haiku-4-5"
        reply = chat.chat.completions.create(
            model="via-glm", messages=body["messages"], max_tokens=12, temperature=0
        )
        assert reply.choices[0].message.content == expected
        counted = messages.messages.count_tokens(model="via-glm", messages=body["messages"])
        assert (
            counted.input_tokens
            == direct.messages.count_tokens(model=EMBEDDED, messages=body["messages"]).input_tokens
        )
    forced = messages.messages.create(
        **ask("via-glm", "Weather in Paris?", max_tokens=48), tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"}, extra_body={"temperature": 0},
    )  # fmt: skip
    [use] = forced.content
    assert use.type == "tool_use" and forced.stop_reason == "tool_use"
    validate(use.input, WEATHER["input_schema"])
