"""The seed's openai-SDK examples, verbatim, on the embedded default (glm-4.6, the 1.5B).

Only ``api_key`` and ``base_url`` differ from the examples (and ``max_retries=0``, so an error
surfaces as it came, and a fixed ``seed``): no ``max_tokens``, no ``temperature: 0``, the
examples' own sampling. So the answers are sampled, and each test asserts what the issue promises
of such an answer: it ends by itself (no ``finish_reason: "length"``), it does not loop
(distinct-4-gram ratio), and the thinking loop runs as written. The seed makes a failure
reproducible: unseeded, a sampled story can still loop (one ran to 4,096 tokens in a suite run
on 2026-12-01), which is a rate, not a yes or no; ``bench/quality.py`` measures that rate over
seeds 1..10 against its target (≥ 9 of 10 end by themselves; 10 of 10 on 2026-12-01).

The client timeout bounds a loop: a looping answer would run to the end of its context.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openai import OpenAI

from .server_process import GlmServe

TIMEOUT_S = 300.0
SEED = 1  # one of the bench's seeds 1..10
MIN_DISTINCT_4 = 0.5  # a loop scores ~0.05; the bench's median on these prompts is well above 0.8


def distinct_4(text: str) -> float:
    windows = [text[i : i + 4] for i in range(len(text) - 3)]
    return len(set(windows)) / len(windows) if windows else 1.0


@pytest.fixture(scope="module")
def seed_client(server: GlmServe) -> Iterator[OpenAI]:
    with OpenAI(api_key=server.api_key, base_url=server.paas_url, max_retries=0, timeout=TIMEOUT_S) as sdk:
        yield sdk


def test_simple_chat_story_ends_by_itself(seed_client: OpenAI) -> None:
    client = seed_client

    completion = client.chat.completions.create(
        model="glm-4.6",
        messages=[
            {"role": "system", "content": "你是一个聪明且富有创造力的小说作家"},
            {"role": "user", "content": "请你作为童话故事大王，写一篇短篇童话故事"},
        ],
        top_p=0.7,
        temperature=0.9,
        seed=SEED,
    )

    print(completion.choices[0].message.content)
    story = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop", completion.usage
    assert len(story) > 100, story
    assert distinct_4(story) >= MIN_DISTINCT_4, story


def test_streaming_poem_ends_by_itself(seed_client: OpenAI) -> None:
    client = seed_client

    response = client.chat.completions.create(
        model="glm-4.6",
        messages=[{"role": "user", "content": "写一首关于春天的诗"}],
        stream=True,
        seed=SEED,
    )

    pieces, finish = [], None
    for chunk in response:
        if chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
            pieces.append(chunk.choices[0].delta.content)
        finish = chunk.choices[0].finish_reason or finish
    poem = "".join(pieces)
    assert finish == "stop" and poem.strip()
    assert distinct_4(poem) >= MIN_DISTINCT_4, poem


def test_thinking_loop_runs_as_written(seed_client: OpenAI) -> None:
    """`delta.reasoning_content` is read on every chunk: it must exist on each (null when none)."""
    client = seed_client

    response = client.chat.completions.create(
        model="glm-4.6",
        messages=[{"role": "user", "content": "为什么天空是蓝色的？"}],
        extra_body={"thinking": {"type": "enabled"}},
        stream=True,
        seed=SEED,
    )

    reasoning, content, finish = [], [], None
    for chunk in response:
        if chunk.choices[0].delta.reasoning_content:
            print(chunk.choices[0].delta.reasoning_content, end="", flush=True)
            reasoning.append(chunk.choices[0].delta.reasoning_content)
        if chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
            content.append(chunk.choices[0].delta.content)
        finish = chunk.choices[0].finish_reason or finish
    assert "".join(reasoning).strip() and "".join(content).strip()
    assert finish == "stop"


def test_function_call_asks_for_beijing_weather(seed_client: OpenAI) -> None:
    client = seed_client
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "获取指定城市的天气信息",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string", "description": "城市名称，如：北京、上海"}},
                    "required": ["location"],
                },
            },
        }
    ]

    response = client.chat.completions.create(
        model="glm-4.6",
        messages=[{"role": "user", "content": "北京今天天气怎么样？"}],
        tools=tools,
        tool_choice="auto",
        seed=SEED,
    )

    assert response.choices[0].message.tool_calls, response.choices[0].message.content
    tool_call = response.choices[0].message.tool_calls[0]
    print(f"函数名: {tool_call.function.name}")
    print(f"参数: {tool_call.function.arguments}")
    assert tool_call.function.name == "get_weather"
    assert "北京" in json.loads(tool_call.function.arguments)["location"]
    assert response.choices[0].finish_reason == "tool_calls"


class ChatBot:
    def __init__(self, client: OpenAI, model: str = "glm-4.6") -> None:
        self.client = client
        self.model = model
        self.conversation_history: list[dict[str, str]] = []
        self.finish_reasons: list[str] = []

    def chat(self, user_input: str) -> str:
        self.conversation_history.append({"role": "user", "content": user_input})
        response = self.client.chat.completions.create(
            model=self.model, messages=self.conversation_history, seed=SEED
        )
        ai_response = response.choices[0].message.content or ""
        self.conversation_history.append({"role": "assistant", "content": ai_response})
        self.finish_reasons.append(response.choices[0].finish_reason)
        return ai_response


def test_chatbot_three_turns_end_by_themselves(seed_client: OpenAI) -> None:
    bot = ChatBot(seed_client)

    replies = [bot.chat("你好，我叫小明。"), bot.chat("我刚才说我叫什么名字？"), bot.chat("谢谢！")]

    for reply in replies:
        print(reply)
        assert reply.strip() and distinct_4(reply) >= MIN_DISTINCT_4, reply
    assert bot.finish_reasons == ["stop"] * 3
