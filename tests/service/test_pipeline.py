"""The serving pipeline in-process: admission, usage rows, 499/500 accounting, cache, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from glmserve.engines.base import Text

from .scripted import ScriptedEngine, answer, chat, in_process, new_key, usage_rows

BAD_TOOL = [{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}]


def run(
    tmp: Path, test: Callable[[httpx.AsyncClient, ScriptedEngine], Awaitable[None]], **settings: Any
) -> None:
    engine = ScriptedEngine()

    async def body() -> None:
        async with in_process(tmp, engine, **settings) as client:
            await test(client, engine)

    asyncio.run(body())


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_a_completed_request_has_its_usage_row(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client)
        response = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "hello"
        [row] = await usage_rows(client, key_id=key.split(".")[0])
        assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (200, 5, 2)
        assert row["protocol"] == "chat"
        assert row["deployment"] == "scripted"

    run(tmp_path, test)


def test_invalid_requests_spend_no_rate_limit(tmp_path: Path) -> None:
    """Three 400s (bad tool schema, bad tool_choice, image to a blind model), then the 2 RPM pass."""

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client, rpm=2)
        image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
        bad = [
            chat(tools=BAD_TOOL),
            chat(tool_choice={"type": "function", "function": {"name": "missing"}}),
            chat(messages=[{"role": "user", "content": image}]),
            chat(model="no-such-model"),
        ]
        for body in bad:
            response = await client.post("/v1/chat/completions", json=body, headers=bearer(key))
            assert response.status_code == 400, response.text
        for _ in range(2):
            response = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
            assert response.status_code == 200, response.text
        refused = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "1303")
        assert engine.seen and len(engine.seen) == 2

    run(tmp_path, test)


def test_an_internal_error_is_recorded_as_500_not_499(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client)
        engine.scripts.append([RuntimeError("engine bug")])
        response = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "500"
        [row] = await usage_rows(client, key_id=key.split(".")[0])
        assert (row["status"], row["error_code"]) == (500, "500")
        metrics = (await client.get("/metrics")).text
        assert 'glmserve_requests_total{code="500",model="glm-4.6",status="500"} 1.0' in metrics

    run(tmp_path, test)


def test_an_error_mid_stream_goes_in_band_and_is_recorded(tmp_path: Path) -> None:
    from glmserve.errors import UpstreamError

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client)
        engine.scripts.append([Text("par"), UpstreamError("upstream cut the stream")])
        response = await client.post("/v1/chat/completions", json=chat(stream=True), headers=bearer(key))
        assert response.status_code == 200
        assert '"content":"par"' in response.text and '"code":"1234"' in response.text
        [row] = await usage_rows(client, key_id=key.split(".")[0])
        assert (row["status"], row["error_code"]) == (502, "1234")

    run(tmp_path, test)


def test_rate_limit_headers_on_answers(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client, rpm=5, tpm=100000)
        response = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        assert response.headers["x-ratelimit-limit-requests"] == "5"
        assert response.headers["x-ratelimit-remaining-requests"] == "4"
        assert response.headers["x-ratelimit-limit-tokens"] == "100000"

    run(tmp_path, test)


def test_cache_hits_are_not_charged_unless_configured(tmp_path: Path) -> None:
    """A 40-token total budget (refused once spent + held reaches it); each answer costs 7 (5 + 2).

    Uncharged hits leave the spend at 7, so all twelve requests pass; charged, the spend grows by 7
    a request and the budget refuses (1113) from the seventh on.
    """
    for charge in (False, True):

        async def test(client: httpx.AsyncClient, engine: ScriptedEngine, charge: bool = charge) -> None:
            key = await new_key(client, budget_tokens=40, budget_period="total")
            statuses, caches = [], []
            for _ in range(12):
                body = chat(temperature=0, max_tokens=2)
                response = await client.post("/v1/chat/completions", json=body, headers=bearer(key))
                statuses.append(response.status_code)
                caches.append(response.headers.get("x-cache"))
            assert len(engine.seen) == 1
            assert caches[:2] == ["MISS", "HIT"]
            if charge:
                assert statuses == [200] * 6 + [429] * 6
            else:
                assert statuses == [200] * 12
            rows = await usage_rows(client, key_id=key.split(".")[0])
            assert sum(r["cache_hit"] for r in rows if r["status"] == 200) == statuses.count(200) - 1

        run(tmp_path / str(charge), test, cache={"enabled": True, "charge_hits": charge})


def test_a_user_key_sees_only_its_own_usage(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        alice, bob = await new_key(client), await new_key(client)
        for key in (alice, bob):
            await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        mine = (await client.get("/admin/usage", headers=bearer(alice))).json()["data"]
        assert {row["key_id"] for row in mine} == {alice.split(".")[0]}
        other = await client.get("/admin/usage", params={"key_id": bob.split(".")[0]}, headers=bearer(alice))
        assert other.status_code == 404

    run(tmp_path, test)


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        big = chat(messages=[{"role": "user", "content": "x" * 5000}])
        response = await client.post("/v1/chat/completions", json=big)
        assert response.status_code == 413
        assert not engine.seen

    run(tmp_path, test, max_body_bytes=4096)


def test_a_client_that_leaves_is_recorded_as_499(tmp_path: Path) -> None:
    """The pipeline itself: ``gone`` fires while the engine is still producing."""
    from glmserve.frontends.chat.plan import build_plan
    from glmserve.frontends.chat.protocol import ChatCompletionRequest
    from glmserve.frontends.chat.render import ChatRendering, Envelope

    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client)
        engine.scripts.append([Text("x")] * 10_000)  # one event per loop turn: the client leaves first
        services = client._transport.app.state.services  # type: ignore[attr-defined]
        principal = await services.auth.authenticate(f"Bearer {key}")
        plan = await build_plan(
            ChatCompletionRequest.model_validate(chat()), services.router, None, "rid-499"
        )

        async def gone() -> None:
            await asyncio.sleep(0)

        rendering = ChatRendering(Envelope("id", "rid-499", "glm-4.6"), False)
        response = await services.pipeline.serve(principal, plan, rendering, gone)
        assert response.status_code == 499
        assert engine.closed_early == 1
        for _ in range(100):  # a 499 row is written in the background
            rows = await usage_rows(client, request_id="rid-499")
            if rows:
                break
            await asyncio.sleep(0.01)
        assert [r["status"] for r in rows] == [499]

    run(tmp_path, test)


def test_scripted_answer_shape() -> None:
    assert [type(e).__name__ for e in answer()] == ["Text", "Text", "Finish", "Usage"]


def test_a_request_refused_before_admission_still_has_its_row(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
        key = await new_key(client, rpm=1)
        body = chat(tools=BAD_TOOL, request_id="bad-tools")
        response = await client.post("/v1/chat/completions", json=body, headers=bearer(key))
        assert response.status_code == 400
        [row] = await usage_rows(client, request_id="bad-tools")
        assert (row["status"], row["error_code"], row["protocol"], row["model"]) == (
            400,
            "1214",
            "chat",
            "glm-4.6",
        )
        ok = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        assert ok.status_code == 200, "the refused request spent no RPM"
        assert len(await usage_rows(client, key_id=key.split(".")[0])) == 2

    run(tmp_path, test)
