"""Cut requests are charged what their engine produced: rows, TPM leases and budgets, in-process.

A client that leaves (streamed, or waiting for a JSON body) and an engine that breaks off get a
row with the tokens produced so far: the engine's last ``Progress`` where it sends one (exact),
else the prompt and the streamed text counted with the route's counter (``usage_estimated``).
The key's TPM lease and its budget hold settle with that same figure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from glmserve.engines.base import Event, Finish, Generation, Progress, Text, Usage
from glmserve.engines.counting import estimate_prompt_tokens, estimate_text_tokens
from glmserve.errors import EngineError, UpstreamError
from glmserve.frontends.chat.plan import build_plan
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.frontends.chat.render import ChatRendering, Envelope

from .scripted import ScriptedEngine, Step, chat, in_process, new_key, usage_rows

PROMPT = 7


def counted(n: int, prompt: int = PROMPT) -> list[Step]:
    """An engine that counts as it streams (as the embedded one does): each delta after its count."""
    steps: list[Step] = []
    for i in range(1, n + 1):
        steps += [Progress(prompt, i), Text(f"w{i} ")]
    return [*steps, Finish("stop"), Usage(prompt, n)]


def uncounted(n: int) -> list[Step]:
    """An upstream without continuous usage: deltas only, the usage at the very end."""
    return [*(Text(f"word{i} ") for i in range(1, n + 1)), Finish("stop"), Usage(PROMPT, n)]


class WordCounter(ScriptedEngine):
    """A scripted engine with a tokenizer of its own: one token per word, 11 for any prompt."""

    def __init__(self, failing: bool = False) -> None:
        super().__init__()
        self.failing = failing

    async def count_prompt_tokens(self, generation: Generation) -> int:
        return 11

    async def count_text_tokens(self, text: str) -> int:
        if self.failing:
            raise EngineError("the tokenizer is down")
        return len(text.split())


class Spy:
    """Records the ``used_tokens`` each TPM lease is released with."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.services = client._transport.app.state.services  # type: ignore[attr-defined]
        limiter = self.services.pipeline.metering.limits.limiter
        self.released: list[int | None] = []
        original = limiter.release

        async def release(lease: Any, used: int | None, *, undo: bool = False) -> None:
            self.released.append(used)
            await original(lease, used, undo=undo)

        limiter.release = release


def run(
    tmp: Path,
    test: Callable[[httpx.AsyncClient, ScriptedEngine], Awaitable[None]],
    engine: ScriptedEngine | None = None,
) -> None:
    engine = engine or ScriptedEngine()

    async def body() -> None:
        async with in_process(tmp, engine) as client:
            await test(client, engine)

    asyncio.run(body())


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def limited_key(client: httpx.AsyncClient) -> str:
    return await new_key(client, tpm=1_000_000, budget_tokens=1_000_000, budget_period="total")


async def the_row(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """The request's row (a 499 row is written in the background)."""
    for _ in range(200):
        if rows := await usage_rows(client, request_id=request_id):
            [row] = rows
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"no usage row for {request_id}")


async def budget_used(client: httpx.AsyncClient, key: str) -> int:
    response = await client.get(f"/admin/keys/{key.split('.')[0]}")
    return int(response.json()["budget_used"])


async def never() -> None:
    await asyncio.Event().wait()


async def leave_stream_after(
    client: httpx.AsyncClient, key: str, request_id: str, frames: int
) -> list[bytes]:
    """Stream a chat request through the pipeline and close it after ``frames`` SSE frames,
    as Starlette does when the client disconnects; the frames read are returned."""
    services = client._transport.app.state.services  # type: ignore[attr-defined]
    principal = await services.auth.authenticate(f"Bearer {key}")
    request = ChatCompletionRequest.model_validate(chat(stream=True))
    plan = await build_plan(request, services.router, None, request_id)
    rendering = ChatRendering(Envelope("id", request_id, "glm-4.6"), False)
    response = await services.pipeline.serve(principal, plan, rendering, never)
    body: AsyncIterator[bytes] = response.body_iterator  # type: ignore[attr-defined]
    read = [await anext(body) for _ in range(frames)]
    await body.aclose()  # type: ignore[attr-defined]
    return read


def test_a_stream_left_after_six_chunks_is_charged_the_engines_count(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key, spy = await limited_key(client), Spy(client)
        engine.scripts.append(counted(500))
        read = await leave_stream_after(client, key, "left-6", 6)
        assert b'"content":"w6 "' in read[-1] and engine.closed_early == 1
        row = await the_row(client, "left-6")
        assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (499, PROMPT, 6)
        assert row["usage_estimated"] is False, "the engine counted: nothing was estimated"
        assert spy.released == [PROMPT + 6], "the TPM lease settles with the row's figure"
        assert await budget_used(client, key) == PROMPT + 6, "the budget hold settles with it too"

    run(tmp_path, test)


def test_a_stream_left_without_engine_counts_is_charged_the_routes_count(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key, spy = await limited_key(client), Spy(client)
        engine.scripts.append(uncounted(500))
        await leave_stream_after(client, key, "left-est", 4)
        row = await the_row(client, "left-est")
        # 11 from the route's prompt counter; the four words streamed, by its text counter.
        assert (row["status"], row["prompt_tokens"], row["usage_estimated"]) == (499, 11, True)
        assert row["completion_tokens"] == 4
        assert spy.released == [11 + 4]
        assert await budget_used(client, key) == 11 + 4

    run(tmp_path, test, WordCounter())


def test_a_count_that_fails_falls_back_to_bytes(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await limited_key(client)
        engine.scripts.append(uncounted(500))
        await leave_stream_after(client, key, "left-bytes", 3)
        row = await the_row(client, "left-bytes")
        plan_gen = engine.seen[-1]
        assert row["usage_estimated"] is True
        assert row["prompt_tokens"] == estimate_prompt_tokens(plan_gen)
        assert row["completion_tokens"] == estimate_text_tokens("word1 word2 word3 ")
        assert await budget_used(client, key) == row["prompt_tokens"] + row["completion_tokens"]

    run(tmp_path, test, WordCounter(failing=True))


def test_an_engine_that_breaks_off_is_charged_what_it_streamed(tmp_path: Path) -> None:
    """The deployment chain's in-band failure after the first byte: 502, the streamed text charged."""

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key, spy = await limited_key(client), Spy(client)
        cut = [Text("one "), Text("two three "), Finish("network_error"), UpstreamError("cut")]
        engine.scripts.append(cut)
        body = chat(stream=True, request_id="cut-up")
        response = await client.post("/v1/chat/completions", json=body, headers=bearer(key))
        assert '"content":"two three "' in response.text and '"code":"1234"' in response.text
        row = await the_row(client, "cut-up")
        assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (502, 11, 3)
        assert row["usage_estimated"] is True
        assert spy.released == [14] and await budget_used(client, key) == 14

    run(tmp_path, test, WordCounter())


def test_a_counted_engine_that_breaks_off_is_not_estimated(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await limited_key(client)
        engine.scripts.append([*counted(3)[:6], UpstreamError("cut")])
        body = chat(stream=True, request_id="cut-counted")
        await client.post("/v1/chat/completions", json=body, headers=bearer(key))
        row = await the_row(client, "cut-counted")
        assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (502, PROMPT, 3)
        assert row["usage_estimated"] is False

    run(tmp_path, test, WordCounter())


def test_a_json_request_whose_client_left_is_charged_the_same_way(tmp_path: Path) -> None:
    """``unless_gone``: the client leaves while the JSON body is being collected."""

    class Hanging(ScriptedEngine):
        def __init__(self) -> None:
            super().__init__()
            self.produced = asyncio.Event()

        async def _play(self, script: list[Step]) -> AsyncIterator[Event]:
            for step in counted(5)[:10]:
                yield step  # type: ignore[misc]
            self.produced.set()
            await never()
            yield Finish("stop")

    engine = Hanging()

    async def test(client: httpx.AsyncClient, _: ScriptedEngine) -> None:
        key, spy = await limited_key(client), Spy(client)
        services = client._transport.app.state.services  # type: ignore[attr-defined]
        principal = await services.auth.authenticate(f"Bearer {key}")
        plan = await build_plan(
            ChatCompletionRequest.model_validate(chat()), services.router, None, "json-left"
        )
        rendering = ChatRendering(Envelope("id", "json-left", "glm-4.6"), False)
        response = await services.pipeline.serve(principal, plan, rendering, engine.produced.wait)
        assert response.status_code == 499
        row = await the_row(client, "json-left")
        assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (499, PROMPT, 5)
        assert row["usage_estimated"] is False and row["stream"] is False
        assert spy.released == [PROMPT + 5] and await budget_used(client, key) == PROMPT + 5

    run(tmp_path, test, engine)


def test_a_completed_answer_keeps_its_reported_usage(tmp_path: Path) -> None:
    """Usage wins over the running counts and over any estimate; the row is there before the body."""

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await limited_key(client)
        engine.scripts.append(
            [Progress(3, 1), Text("a"), Progress(3, 2), Text("b"), Finish("stop"), Usage(9, 4)]
        )
        engine.scripts.append(uncounted(2))
        for request_id in ("done-counted", "done-plain"):
            body = chat(request_id=request_id)
            assert (
                await client.post("/v1/chat/completions", json=body, headers=bearer(key))
            ).status_code == 200
            [row] = await usage_rows(client, request_id=request_id)  # committed before the body
            assert row["usage_estimated"] is False and row["status"] == 200
        [counted_row] = await usage_rows(client, request_id="done-counted")
        assert (counted_row["prompt_tokens"], counted_row["completion_tokens"]) == (9, 4)

    run(tmp_path, test, WordCounter())


def test_an_answer_without_any_usage_is_estimated(tmp_path: Path) -> None:
    """An upstream that never reports usage: its completed row is counted from its text."""

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await limited_key(client)
        engine.scripts.append([Text("no usage "), Text("here"), Finish("stop")])
        body = chat(request_id="no-usage")
        assert (await client.post("/v1/chat/completions", json=body, headers=bearer(key))).status_code == 200
        [row] = await usage_rows(client, request_id="no-usage")
        assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (200, 11, 3)
        assert row["usage_estimated"] is True

    run(tmp_path, test, WordCounter())
