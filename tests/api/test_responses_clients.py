"""Responses clients beyond the plain SDK: a Codex-CLI-shaped exchange by raw HTTP, the openai-agents
SDK running an agent with a function tool, a chat-completions upstream serving a Responses client,
and stored responses surviving a restart.

The Codex request has the shape Codex CLI sends to ``{base_url}/responses`` (codex-rs
``ResponsesApiRequest``): ``instructions``, ``input`` items (a developer message, the user's
environment context and prompt), function tools with ``strict: false``, ``tool_choice: "auto"``,
``parallel_tool_calls: false``, ``reasoning`` with ``summary: "auto"``, ``store: false``,
``stream: true``, ``include: ["reasoning.encrypted_content"]`` and a ``prompt_cache_key``. With
``store: false`` it sends the whole history back each turn: its earlier output items, then the
``function_call_output``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from . import server_process
from .credentials import new_zhipu_key
from .fake_upstream import ANSWER, FakeUpstream
from .responses_wire import assert_response, post_stream, streamed_text
from .server_process import MODEL_FILE, GlmServe
from .upstream_gateway import UPSTREAM_KEY_ENV, start_gateway
from .wire_schema import sdk_dump

MODEL = "glm-4.5-flash"
SLOW_TIMEOUT_S = 600  # a Codex turn carries a long prompt; a busy machine may be slow with it
SHELL = {
    "type": "function",
    "name": "shell",
    "description": "Runs a shell command and returns its output.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {
            "command": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The command to execute",
            },
            "workdir": {"type": "string", "description": "The working directory to execute the command in"},
            "timeout_ms": {"type": "number", "description": "The timeout for the command in milliseconds"},
        },
        "required": ["command"],
        "additionalProperties": False,
    },
}
UPDATE_PLAN = {
    "type": "function",
    "name": "update_plan",
    "description": "Updates the task plan.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {
            "explanation": {"type": "string"},
            "plan": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["plan"],
        "additionalProperties": False,
    },
}


def codex_turn(input_items: list[dict[str, Any]], cache_key: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "instructions": "You are Codex, a coding agent in a terminal. Use the shell tool to inspect files.",
        "input": input_items,
        "tools": [SHELL, UPDATE_PLAN],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "low", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": cache_key,
        "max_output_tokens": 40,
        "temperature": 0,
    }


@pytest.fixture(scope="module")
def raw(server: GlmServe) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}", "originator": "codex_cli_rs"}
    with httpx.Client(base_url=server.v1_url, headers=headers, timeout=SLOW_TIMEOUT_S) as http:
        yield http


def test_a_codex_shaped_exchange(raw: httpx.Client) -> None:
    cache_key = str(uuid.uuid4())
    context = "<environment_context>\n  <cwd>/repo</cwd>\n  <shell>bash</shell>\n</environment_context>"
    first_input = [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Sandbox: read-only."}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": context}]},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "List the files here."}],
        },
    ]
    events = post_stream(raw, codex_turn(first_input, cache_key))
    final = events[-1]["response"]
    assert final["store"] is False and final["parallel_tool_calls"] is False
    assert final["output"][0]["type"] == "reasoning" and final["output"][0]["summary"]
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    assert raw.get(f"responses/{final['id']}").status_code == 404  # store: false
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == final["output"]  # what Codex keeps from the stream is the final output
    call = {
        "type": "function_call",
        "call_id": "call_codex_1",
        "name": "shell",
        "arguments": json.dumps({"command": ["ls"], "workdir": "/repo"}),
    }
    second_input = [
        *first_input,
        *[item for item in done if item["type"] == "reasoning"],  # sent back as Codex does
        call,
        {"type": "function_call_output", "call_id": "call_codex_1", "output": "README.md\nsrc\n"},
    ]
    events = post_stream(raw, codex_turn(second_input, cache_key))
    assert events[-1]["response"]["status"] in ("completed", "incomplete")
    assert streamed_text(events) == events[-1]["response"]["output_text"]


def test_the_agents_sdk_runs_an_agent_with_a_function_tool(server: GlmServe) -> None:
    """The agent calls its tool (``stop_on_first_tool``: the tool's output is the result); a second
    run sends that conversation back (the call and its output) and the model answers in text.
    (The full tool loop over a scripted engine is in tests/service/test_responses.py.)"""
    import agents  # installed by ./run (see its comment on pyjwt)

    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        calls.append(city)
        return f"The weather in {city} is sunny, 22 C."

    async def run() -> Any:
        client = AsyncOpenAI(
            api_key=server.api_key, base_url=server.v1_url, max_retries=0, timeout=SLOW_TIMEOUT_S
        )
        model = agents.OpenAIResponsesModel(model=MODEL, openai_client=client)
        settings = agents.ModelSettings(tool_choice="required", temperature=0, max_tokens=48)
        agent = agents.Agent(
            name="weather",
            instructions="Answer weather questions with the get_weather tool. Reply in at most ten words.",
            tools=[get_weather],
            model=model,
            model_settings=settings,
            tool_use_behavior="stop_on_first_tool",
        )
        config = agents.RunConfig(tracing_disabled=True)
        try:
            called = await agents.Runner.run(agent, "What is the weather in Paris?", run_config=config)
            replying = agent.clone(model_settings=settings.resolve(agents.ModelSettings(tool_choice="none")))
            answered = await agents.Runner.run(
                replying, called.to_input_list(), run_config=config, max_turns=1
            )
            return called, answered
        finally:
            await client.close()

    called, answered = asyncio.run(run())
    assert calls and calls[0]
    assert [item.type for item in called.new_items] == ["tool_call_item", "tool_call_output_item"]
    assert called.final_output == f"The weather in {calls[0]} is sunny, 22 C."
    assert [item.type for item in answered.new_items] == ["message_output_item"]
    assert isinstance(answered.final_output, str) and answered.final_output
    sent = [item.get("type") for item in called.to_input_list()]
    assert sent[-2:] == ["function_call", "function_call_output"]  # what the second run sent back
    for result in (called, answered):
        assert all(r.usage.input_tokens > 0 for r in result.raw_responses)


def test_a_chat_completions_upstream_serves_a_responses_client(tmp_path: Path) -> None:
    with FakeUpstream(chunks=10) as fake:  # ten chunks: the whole ANSWER
        deployment = {
            "kind": "openai",
            "base_url": fake.base_url,
            "api_key_env": UPSTREAM_KEY_ENV,
            "model": "ok",
        }
        table = {
            "relay": {"deployments": [deployment]},
            "broken": {"deployments": [deployment | {"model": "sse_error_mid"}]},
        }
        with start_gateway(tmp_path / "gw", table, "sk-upstream") as gateway:
            with OpenAI(api_key=gateway.api_key, base_url=gateway.v1_url, max_retries=0) as sdk:
                created = sdk.responses.create(model="relay", input="say hello")
                assert_response(sdk_dump(created))
                assert created.output_text == ANSWER and created.usage is not None
                assert sdk.responses.retrieve(created.id).output_text == ANSWER
                tool = {**SHELL, "name": "get_weather"}
                first = sdk.responses.create(model="relay", input="weather?", tools=[tool])
                call = first.output[0]
                assert call.type == "function_call" and call.arguments == '{"city": "Beijing"}'
                output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
                answer = sdk.responses.create(
                    model="relay",
                    input=[output],
                    previous_response_id=first.id,
                    tools=[tool],
                    tool_choice="none",
                )
                assert answer.output_text == ANSWER
                relayed = fake.requests_for("ok")[-1].body["messages"]
                assert [m["role"] for m in relayed] == ["user", "assistant", "tool"]
                assert relayed[1]["tool_calls"][0]["id"] == call.call_id and relayed[2]["content"] == "sunny"
            headers = {"Authorization": f"Bearer {gateway.api_key}"}
            with httpx.Client(base_url=gateway.v1_url, headers=headers, timeout=30) as http:
                events = post_stream(http, {"model": "relay", "input": "say hello"})
                assert streamed_text(events) == ANSWER and events[-1]["type"] == "response.completed"
                failed = post_stream(http, {"model": "broken", "input": "say hello"})
                assert failed[-1]["type"] == "response.failed"
                assert failed[-1]["response"]["error"]["code"] == "server_error"
                stored = http.get(f"responses/{failed[-1]['response']['id']}")
                deadline = time.monotonic() + 5  # kept just after the stream ends
                while stored.status_code == 404 and time.monotonic() < deadline:
                    stored = http.get(f"responses/{failed[-1]['response']['id']}")
                assert stored.json()["status"] == "failed"
        sent = fake.requests_for("ok")
        assert sent and sent[0].body["messages"] == [{"role": "user", "content": "say hello"}]


def test_stored_responses_survive_a_restart(server: GlmServe, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / MODEL_FILE).parent.mkdir(parents=True)
    os.link(server.model_path, data / MODEL_FILE)  # the assembled model, without assembling it again
    key = new_zhipu_key()
    first = server_process.start(data, tmp_path / "first.log", key)
    with first, OpenAI(api_key=key, base_url=first.v1_url, max_retries=0) as sdk:
        created = sdk.responses.create(model=MODEL, input="Hi.", max_output_tokens=8, temperature=0)
    second = server_process.start(data, tmp_path / "second.log", key)
    with second, OpenAI(api_key=key, base_url=second.v1_url, max_retries=0) as sdk:
        again = sdk.responses.retrieve(created.id)
        items = sdk.responses.input_items.list(created.id)
        follow = sdk.responses.create(
            model=MODEL, input="Again.", previous_response_id=created.id, max_output_tokens=8
        )
    assert sdk_dump(again) == sdk_dump(created)
    assert [i.content[0].text for i in items.data] == ["Hi."]  # type: ignore[union-attr]
    assert follow.status in ("completed", "incomplete")
