"""The Responses front-end in-process, over a scripted engine: the wire (every event and object
against the spec), storage and ownership, conversations, background jobs, retention, accounting."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from api.responses_wire import assert_event, assert_response, read_events, streamed_text
from openai import AsyncOpenAI

from glmserve.engines.base import Event, Finish, Generation, Reasoning, Text, ToolCall, Usage
from glmserve.errors import UpstreamError

from .scripted import STATIC_KEY, ScriptedEngine, answer, in_process, new_key, usage_rows

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
CALL = [
    ToolCall(0, "call_1", "get_weather", '{"city":'),
    ToolCall(0, None, None, '"Paris"}'),
    Finish("tool_calls"),
    Usage(20, 6),
]
NO_CACHE = {"cache": {"enabled": False}}


def run(
    tmp: Path, test: Callable[[httpx.AsyncClient, ScriptedEngine], Awaitable[None]], **settings: Any
) -> None:
    engine = ScriptedEngine()

    async def body() -> None:
        async with in_process(tmp, engine, **NO_CACHE, **settings) as client:
            await test(client, engine)

    asyncio.run(body())


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def sdk(client: httpx.AsyncClient, key: str = STATIC_KEY) -> AsyncOpenAI:
    http = httpx.AsyncClient(transport=client._transport, base_url="http://glmserve/v1/")
    return AsyncOpenAI(api_key=key, base_url="http://glmserve/v1/", http_client=http, max_retries=0)


async def stream(
    client: httpx.AsyncClient, body: dict[str, Any], key: str = STATIC_KEY
) -> list[dict[str, Any]]:
    response = await client.post("/v1/responses", json={**body, "stream": True}, headers=bearer(key))
    assert response.status_code == 200, response.text
    events = read_events(response.text)
    for event in events:
        assert_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_reasoning_text_and_calls_stream_validate_and_are_stored(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        engine.scripts.append([Reasoning("hm"), Text("Let me look."), *CALL])
        events = await stream(client, {"model": "glm-4.6", "input": "weather?", "tools": [WEATHER]})
        final = events[-1]["response"]
        assert events[-1]["type"] == "response.completed"
        assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
        assert (
            final["output"][2]["arguments"] == '{"city":"Paris"}'
            and final["output"][2]["call_id"] == "call_1"
        )
        assert streamed_text(events) == final["output_text"] == "Let me look."
        stored = await client.get(f"/api/paas/v4/responses/{final['id']}")
        assert stored.status_code == 200 and stored.json() == final
        assert_response(stored.json())
        [row] = await usage_rows(client)
        assert (row["protocol"], row["stream"], row["prompt_tokens"], row["completion_tokens"]) == (
            "responses",
            True,
            20,
            6,
        )
        tools = engine.seen[0].tools
        assert tools[0]["function"]["name"] == "get_weather" and tools[0]["function"]["strict"] is True

    run(tmp_path, test)


def test_a_function_call_round_trip_reaches_the_engine_as_chat_messages(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        engine.scripts += [CALL, answer("It is sunny.")]
        async with sdk(client) as openai:
            first = await openai.responses.create(
                model="glm-4.6", input="weather?", instructions="Be brief.", tools=[WEATHER]
            )
            (call,) = first.output
            assert call.type == "function_call"
            second = await openai.responses.create(
                model="glm-4.6",
                previous_response_id=first.id,
                tools=[WEATHER],
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            )
            assert second.output_text == "It is sunny."
            assert_response(second.model_dump(exclude_unset=True))
            items = await openai.responses.input_items.list(second.id)
            assert [i.type for i in items.data] == ["function_call_output"]
        messages = engine.seen[1].messages
        assert [m["role"] for m in messages] == ["user", "assistant", "tool"]  # instructions not carried
        assert messages[1]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        }
        assert messages[2] == {"role": "tool", "content": "sunny", "tool_call_id": call.call_id}

    run(tmp_path, test)


def test_an_error_after_the_stream_began_is_response_failed(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        engine.scripts.append([Text("par"), UpstreamError("upstream cut the stream")])
        events = await stream(client, {"model": "glm-4.6", "input": "hi"})
        failed = events[-1]
        assert failed["type"] == "response.failed" and failed["response"]["error"]["code"] == "server_error"
        assert failed["response"]["output"][0]["status"] == "incomplete"
        stored = await client.get(f"/v1/responses/{failed['response']['id']}")
        for _ in range(200):  # the failed object is kept in the background, just after the stream
            if stored.status_code == 200:
                break
            await asyncio.sleep(0.01)
            stored = await client.get(f"/v1/responses/{failed['response']['id']}")
        assert stored.json()["status"] == "failed"
        [row] = await usage_rows(client)
        assert (row["status"], row["error_code"], row["protocol"]) == (502, "1234", "responses")

    run(tmp_path, test)


def test_ownership_store_false_and_delete(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        alice, bob = await new_key(client), await new_key(client)
        made = (
            await client.post("/v1/responses", json={"model": "glm-4.6", "input": "x"}, headers=bearer(alice))
        ).json()
        for path in (f"/v1/responses/{made['id']}", f"/v1/responses/{made['id']}/input_items"):
            assert (await client.get(path, headers=bearer(bob))).status_code == 404
            assert (await client.get(path, headers=bearer(alice))).status_code == 200
        assert (await client.delete(f"/v1/responses/{made['id']}", headers=bearer(bob))).status_code == 404
        gone = await client.delete(f"/v1/responses/{made['id']}", headers=bearer(alice))
        assert gone.json() == {"id": made["id"], "object": "response.deleted", "deleted": True}
        assert (await client.get(f"/v1/responses/{made['id']}", headers=bearer(alice))).status_code == 404
        body = {"model": "glm-4.6", "input": "x", "store": False}
        unkept = (await client.post("/v1/responses", json=body, headers=bearer(alice))).json()
        assert unkept["store"] is False
        assert (await client.get(f"/v1/responses/{unkept['id']}", headers=bearer(alice))).status_code == 404
        cont = {"model": "glm-4.6", "input": "y", "previous_response_id": unkept["id"]}
        missing = await client.post("/v1/responses", json=cont, headers=bearer(alice))
        assert (missing.status_code, missing.json()["error"]["param"]) == (404, "previous_response_id")

    run(tmp_path, test)


def test_refusals_spend_no_rate_limit(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client, rpm=1)
        for patch in (
            {"tools": [{"type": "web_search"}]},
            {"input": [{"type": "computer_call"}]},
            {"tools": [WEATHER], "tool_choice": "required", "text": {"format": {"type": "json_schema"}}},
        ):
            response = await client.post(
                "/v1/responses", json={"model": "glm-4.6", "input": "x", **patch}, headers=bearer(key)
            )
            assert response.status_code == 400, response.text
        ok = await client.post("/v1/responses", json={"model": "glm-4.6", "input": "x"}, headers=bearer(key))
        assert ok.status_code == 200 and not engine.seen[1:]

    run(tmp_path, test)


class GatedEngine(ScriptedEngine):
    """Waits for ``gate`` before answering: a background job that is still running."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    def stream(self, generation: Generation) -> AsyncIterator[Event]:
        self.seen.append(generation)
        return self._gated()

    async def _gated(self) -> AsyncIterator[Event]:
        await self.gate.wait()
        for ev in answer("done"):
            yield ev  # type: ignore[misc]


def test_background_runs_as_a_job_and_can_be_cancelled(tmp_path: Path) -> None:
    engine = GatedEngine()

    async def body() -> None:
        async with in_process(tmp_path, engine, **NO_CACHE) as client:
            job = {"model": "glm-4.6", "input": "x", "background": True}
            queued = (await client.post("/v1/responses", json=job)).json()
            assert queued["status"] == "queued" and queued["background"] is True
            assert_response(queued)
            await _until(client, queued["id"], "in_progress")
            cancelled = (await client.post(f"/v1/responses/{queued['id']}/cancel")).json()
            assert cancelled["status"] == "cancelled"
            assert_response(cancelled)
            assert (await client.get(f"/v1/responses/{queued['id']}")).json()["status"] == "cancelled"
            second = (await client.post("/v1/responses", json=job)).json()
            engine.gate.set()
            done = await _until(client, second["id"], "completed")
            assert done["output_text"] == "done" and done["usage"]["input_tokens"] == 5
            again = (await client.post(f"/v1/responses/{second['id']}/cancel")).json()
            assert again["status"] == "completed"
            plain = (await client.post("/v1/responses", json={"model": "glm-4.6", "input": "x"})).json()
            refused = await client.post(f"/v1/responses/{plain['id']}/cancel")
            assert refused.status_code == 400
            rows = await usage_rows(client)
            assert sorted(r["status"] for r in rows) == [200, 200, 499]  # the cancelled job's row

    asyncio.run(body())


async def _until(client: httpx.AsyncClient, response_id: str, status: str) -> dict[str, Any]:
    for _ in range(500):
        body: dict[str, Any] = (await client.get(f"/v1/responses/{response_id}")).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"{response_id} never reached {status}: {body}")


def test_retention_removes_old_stored_responses_at_start(tmp_path: Path) -> None:
    made: dict[str, str] = {}

    async def create(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        for name in ("old", "new"):
            made[name] = (
                await client.post("/v1/responses", json={"model": "glm-4.6", "input": name})
            ).json()["id"]

    run(tmp_path, create)
    with sqlite3.connect(tmp_path / "glmserve.db") as db:
        db.execute(
            "UPDATE responses SET created_at = ? WHERE id = ?", (time.time() - 40 * 86400, made["old"])
        )

    async def check(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        # The retention pass runs as the service starts: wait for it, within a deadline.
        deadline = time.monotonic() + 5
        while (old := await client.get(f"/v1/responses/{made['old']}")).status_code != 404:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert old.status_code == 404
        assert (await client.get(f"/v1/responses/{made['new']}")).status_code == 200

    run(tmp_path, check, usage={"retention_days": 30})


def test_the_agents_sdk_runs_its_tool_loop(tmp_path: Path) -> None:
    """openai-agents over ``OpenAIResponsesModel``: a call, the tool's output sent back, the answer."""
    import agents

    ran: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        ran.append(city)
        return "sunny"

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        engine.scripts += [CALL, answer("It is sunny in Paris.")]
        async with sdk(client) as openai:
            model = agents.OpenAIResponsesModel(model="glm-4.6", openai_client=openai)
            agent = agents.Agent(name="w", instructions="Use tools.", tools=[get_weather], model=model)
            config = agents.RunConfig(tracing_disabled=True)
            result = await agents.Runner.run(agent, "Weather in Paris?", run_config=config, max_turns=3)
        assert ran == ["Paris"] and result.final_output == "It is sunny in Paris."
        follow_up = engine.seen[1].messages
        assert [m["role"] for m in follow_up] == ["system", "user", "assistant", "tool"]
        assert follow_up[3]["content"] == "sunny"

    run(tmp_path, test)
