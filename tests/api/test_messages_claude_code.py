"""Claude-Code-shaped traffic by raw HTTP: its headers, ``?beta=true``, system blocks with
``cache_control`` (the first a per-request billing header), 20+ tools with draft-07 schemas,
``metadata.user_id``, ``context_management``, streaming.

The shape follows captures of Claude Code 2.x published by gateway projects (LiteLLM,
CLIProxyAPI, llama.cpp #20623); ``max_tokens`` is kept small here (Claude Code sends 32000, which
only caps the answer) so the 0.5B model stops quickly. The first request's ~1,500 prompt tokens
take seconds on an idle machine; the timeout is generous for a busy one.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from .server_process import GlmServe

MODEL = "glm-4.5-flash"
TOOL_NAMES = [
    "Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write",
    "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand",
    "mcp__ide__getDiagnostics", "mcp__ide__executeCode", "mcp__github__search_code", "mcp__github__get_issue",
]  # fmt: skip
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"


def tool(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} tool.",
        "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"arg": {"type": "string", "description": "the argument"}},
            "required": ["arg"],
            "additionalProperties": False,
        },
    }


def headers(server: GlmServe) -> dict[str, str]:
    return {
        "authorization": f"Bearer {server.api_key}",  # ANTHROPIC_AUTH_TOKEN
        "anthropic-version": "2023-06-01",
        "anthropic-beta": BETAS,
        "anthropic-dangerous-direct-browser-access": "true",
        "x-app": "cli",
        "user-agent": "claude-cli/2.1.45 (external, cli)",
        "x-stainless-lang": "js",
        "x-stainless-package-version": "0.70.0",
        "x-stainless-retry-count": "0",
        "x-stainless-timeout": "600",
        "accept": "application/json",
        "content-type": "application/json",
    }


def body(question: str) -> dict[str, Any]:
    billing = (
        f"x-anthropic-billing-header: cc_version=2.1.45.0d9; cc_entrypoint=cli; cch={secrets.token_hex(3)};"
    )
    ephemeral = {"type": "ephemeral"}
    return {
        "model": MODEL,
        "max_tokens": 16,
        "stream": True,
        "temperature": 1,
        "system": [
            {"type": "text", "text": billing},
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": ephemeral,
            },
            {
                "type": "text",
                "text": "You are an interactive CLI tool. Answer concisely.",
                "cache_control": ephemeral,
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>The working directory is /repo.</system-reminder>",
                    },
                    {"type": "text", "text": question, "cache_control": ephemeral},
                ],
            }
        ],
        "tools": [tool(name) for name in TOOL_NAMES],
        "metadata": {"user_id": f"user_{secrets.token_hex(32)}_account__session_{secrets.token_hex(16)}"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }


def stream(
    server: GlmServe, payload: dict[str, Any]
) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    url = f"{server.root}/api/anthropic/v1/messages?beta=true"
    with (
        httpx.Client(timeout=900) as http,
        http.stream("POST", url, json=payload, headers=headers(server)) as response,
    ):
        assert response.status_code == 200, response.read()
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                assert name is not None, "every data line follows its event line"
                events.append((name, json.loads(line[6:])))
                name = None
    return response, events


def assert_well_formed(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Event names match payload types, blocks open and close in index order; returns message_delta."""
    assert all(name == payload["type"] for name, payload in events)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[1] == "ping"
    assert names[-2:] == ["message_delta", "message_stop"]
    expected, open_index = 0, None
    for name, payload in events[2:-2]:
        if name == "content_block_start":
            assert open_index is None and payload["index"] == expected
            open_index = expected
        elif name in ("content_block_delta", "content_block_stop"):
            assert payload["index"] == open_index
            if name == "content_block_stop":
                open_index, expected = None, expected + 1
        else:
            assert name == "ping", name
    assert open_index is None and expected >= 1
    return events[-2][1]


def test_claude_code_request_streams_and_hits_the_prompt_cache(server: GlmServe) -> None:
    response, events = stream(server, body("Say hi."))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"]
    first = assert_well_formed(events)
    assert first["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use")
    assert events[0][1]["message"]["model"] == MODEL
    # The same conversation again, with a new billing header (its `cch` changes on every request):
    # that block is dropped, so the whole system prompt and the 21 tools come from the cache.
    _, again = stream(server, body("Say hi."))
    usage = assert_well_formed(again)["usage"]
    total = usage["input_tokens"] + usage["cache_read_input_tokens"]
    assert total == first["usage"]["input_tokens"] + first["usage"]["cache_read_input_tokens"]
    assert usage["cache_read_input_tokens"] > total // 2, usage


def test_claude_code_counts_tokens_with_its_tools(server: GlmServe) -> None:
    payload = body("Say hi.")
    for key in ("max_tokens", "stream", "temperature", "metadata"):
        payload.pop(key)
    url = f"{server.root}/api/anthropic/v1/messages/count_tokens?beta=true"
    response = httpx.post(url, json=payload, headers=headers(server), timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > len(TOOL_NAMES) * 10
