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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from . import server_process
from .conftest import REQUEST_TIMEOUT_S
from .credentials import new_zhipu_key
from .fake_upstream import ANSWER, FakeUpstream
from .responses_wire import assert_response, post_stream, streamed_text
from .server_process import MODEL_FILE, GlmServe
from .upstream_gateway import UPSTREAM_KEY_ENV, start_gateway
from .wire_schema import sdk_dump

MODEL = "glm-4.5-flash"
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
    with httpx.Client(base_url=server.v1_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
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
    agents = pytest.importorskip("agents")
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        calls.append(city)
        return f"The weather in {city} is sunny, 22 C."

    async def run() -> Any:
        client = AsyncOpenAI(api_key=server.api_key, base_url=server.v1_url, max_retries=0)
        model = agents.OpenAIResponsesModel(model=MODEL, openai_client=client)
        agent = agents.Agent(
            name="weather",
            instructions="Answer weather questions with the get_weather tool, in one short sentence.",
            tools=[get_weather],
            model=model,
            model_settings=agents.ModelSettings(tool_choice="required", temperature=0, max_tokens=80),
        )
        config = agents.RunConfig(tracing_disabled=True)
        try:
            return await agents.Runner.run(
                agent, "What is the weather in Paris?", run_config=config, max_turns=4
            )
        finally:
            await client.close()

    result = asyncio.run(run())
    assert calls and calls[0]
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"]  # then the model answered
    assert isinstance(result.final_output, str) and result.final_output
    responses = result.raw_responses
    assert len(responses) >= 2 and all(r.usage.input_tokens > 0 for r in responses)


def test_a_chat_completions_upstream_serves_a_responses_client(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
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
                created = sdk.responses.create(model="relay", input="say hello", max_output_tokens=32)
                assert_response(sdk_dump(created))
                assert created.output_text == ANSWER and created.usage is not None
                assert sdk.responses.retrieve(created.id).output_text == ANSWER
            headers = {"Authorization": f"Bearer {gateway.api_key}"}
            with httpx.Client(base_url=gateway.v1_url, headers=headers, timeout=30) as http:
                events = post_stream(http, {"model": "relay", "input": "say hello"})
                assert streamed_text(events) == ANSWER and events[-1]["type"] == "response.completed"
                failed = post_stream(http, {"model": "broken", "input": "say hello"})
                assert failed[-1]["type"] == "response.failed"
                assert failed[-1]["response"]["error"]["code"] == "server_error"
                assert http.get(f"responses/{failed[-1]['response']['id']}").json()["status"] == "failed"
        sent = fake.requests_for("ok")
        assert sent and sent[-1].body["messages"] == [{"role": "user", "content": "say hello"}]


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
