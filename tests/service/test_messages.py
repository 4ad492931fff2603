"""The Messages front-end in-process: the same pipeline (usage rows, limits), Anthropic's envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from glmserve.engines.base import Finish, Text, Usage
from glmserve.errors import UpstreamError

from .scripted import STATIC_KEY, ScriptedEngine, in_process, new_key, usage_rows

PREFIXES = ("/v1/messages", "/api/anthropic/v1/messages")


def run(
    tmp: Path, test: Callable[[httpx.AsyncClient, ScriptedEngine], Awaitable[None]], **settings: Any
) -> None:
    engine = ScriptedEngine()

    async def body() -> None:
        async with in_process(tmp, engine, **settings) as client:
            await test(client, engine)

    asyncio.run(body())


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": "glm-4.6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **extra}


def key_header(key: str) -> dict[str, str]:
    return {"x-api-key": key, "authorization": ""}


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        head, data = block.split("\n")
        out.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


async def settled_rows(client: httpx.AsyncClient, key_id: str, count: int) -> list[dict[str, Any]]:
    for _ in range(100):
        rows = await usage_rows(client, key_id=key_id)
        if len(rows) >= count:
            break
        await asyncio.sleep(0.05)
    return rows


@pytest.mark.parametrize("path", PREFIXES)
def test_a_message_has_its_usage_row_with_the_messages_protocol(tmp_path: Path, path: str) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client)
        response = await client.post(path + "?beta=true", json=ask(), headers=key_header(key))
        assert response.status_code == 200, response.text
        assert response.json()["content"] == [{"type": "text", "text": "hello"}]
        request_id = response.headers["request-id"]
        assert request_id == response.headers["x-request-id"]
        [row] = await usage_rows(client, request_id=request_id)
        assert (row["protocol"], row["status"], row["prompt_tokens"], row["completion_tokens"]) == (
            "messages", 200, 5, 2,
        )  # fmt: skip
        assert row["key_id"] == key.split(".")[0]

    run(tmp_path, test)


def test_limits_count_messages_like_chat(tmp_path: Path) -> None:
    """One RPM window shared by both protocols: a chat request then a message fill an RPM of 2."""

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client, rpm=2)
        chat = {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}]}
        bearer = {"authorization": f"Bearer {key}"}
        assert (await client.post("/v1/chat/completions", json=chat, headers=bearer)).status_code == 200
        assert (await client.post("/v1/messages", json=ask(), headers=bearer)).status_code == 200
        refused = await client.post("/v1/messages", json=ask(), headers=key_header(key))
        assert refused.status_code == 429
        error = refused.json()
        assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
        assert error["error"]["code"] == "1303" and refused.headers["retry-after"]
        rows = await settled_rows(client, key.split(".")[0], 3)  # a refusal's row is written later
        assert sorted((r["protocol"], r["status"]) for r in rows) == [
            ("chat", 200), ("messages", 200), ("messages", 429),
        ]  # fmt: skip

    run(tmp_path, test)


def test_errors_are_in_anthropics_envelope_on_every_path(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        cases = [
            (
                client.post("/v1/messages", json=ask(), headers={"authorization": ""}),
                401,
                "authentication_error",
            ),
            (
                client.post("/v1/messages", json=ask(), headers=key_header("bad.key")),
                401,
                "authentication_error",
            ),
            (client.post("/v1/messages", json=ask(model="nope")), 400, "invalid_request_error"),
            (client.post("/v1/messages", json={"model": "glm-4.6"}), 400, "invalid_request_error"),
            (client.post("/v1/messages", content=b"{oops"), 400, "invalid_request_error"),
            (client.post("/api/anthropic/v1/nothing", json={}), 404, "not_found_error"),
            (client.get("/v1/messages"), 405, "invalid_request_error"),
            (client.post("/v1/messages", content=b"x" * 5000), 413, "request_too_large"),
        ]
        for call, status, kind in cases:
            response = await call
            assert response.status_code == status, response.text
            body = response.json()
            assert body["type"] == "error" and body["error"]["type"] == kind, body
            assert body["error"]["code"] and body["request_id"] == response.headers["x-request-id"]
        chat = await client.post("/v1/chat/completions", json={"model": "nope", "messages": []})
        assert "type" not in chat.json() and chat.json()["error"]["code"]  # chat keeps its own envelope

    run(tmp_path, test, max_body_bytes=4096)


def test_a_failure_before_the_stream_keeps_its_status_after_it_is_an_error_event(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        engine.scripts.append([UpstreamError("deployment x failed")])
        early = await client.post("/v1/messages", json=ask(stream=True))
        assert early.status_code == 502 and early.json()["error"]["type"] == "api_error"
        engine.scripts.append(
            [Text("partial"), Finish("network_error"), UpstreamError("deployment x broke off")]
        )
        late = await client.post("/v1/messages", json=ask(stream=True))
        assert late.status_code == 200
        events = sse_events(late.text)
        assert [name for name, _ in events[:2]] == ["message_start", "ping"]
        name, payload = events[-1]
        assert name == "error" and payload["error"] == {
            "type": "api_error", "message": "deployment x broke off", "code": "1234",
        }  # fmt: skip
        assert all(name != "message_stop" for name, _ in events)

    run(tmp_path, test)


def test_count_tokens_runs_nothing_and_spends_no_limit(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client, rpm=1, models=["glm-4.6"])
        for _ in range(3):
            counted = await client.post("/v1/messages/count_tokens", json=ask(), headers=key_header(key))
            assert counted.status_code == 200, counted.text
            assert counted.json()["input_tokens"] > 0
        assert engine.seen == []
        assert (await client.post("/v1/messages", json=ask(), headers=key_header(key))).status_code == 200
        other = await client.post(
            "/v1/messages/count_tokens", json=ask(model="glm-4.5-flash"), headers=key_header(key)
        )
        assert other.status_code == 403 and other.json()["error"]["type"] == "permission_error"

    run(tmp_path, test)


def test_generation_carries_what_chat_cannot(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14"}
        body = ask(top_k=3, thinking={"type": "enabled", "budget_tokens": 8}, stop_sequences=["Z"])
        engine.scripts.append([Text("a"), Finish("stop", "Z"), Usage(3, 1)])
        response = await client.post("/v1/messages", json=body, headers=headers)
        assert (response.json()["stop_reason"], response.json()["stop_sequence"]) == ("stop_sequence", "Z")
        [gen] = engine.seen
        assert (gen.sampling.top_k, gen.reasoning_budget, gen.thinking) == (3, 8, "enabled")
        assert gen.headers == headers

    run(tmp_path, test)


def test_the_static_key_works_as_x_api_key(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        response = await client.post("/api/anthropic/v1/messages", json=ask(), headers=key_header(STATIC_KEY))
        assert response.status_code == 200

    run(tmp_path, test)
