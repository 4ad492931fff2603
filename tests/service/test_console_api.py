"""What the web console needs of the app, in-process: its files and headers, /admin/me, paged usage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from glmserve.http.routes.console import CSP

from .scripted import STATIC_KEY, ScriptedEngine, chat, in_process, new_key


def run(tmp: Path, test: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def body() -> None:
        async with in_process(tmp, ScriptedEngine()) as client:
            await test(client)

    asyncio.run(body())


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def rows_of(client: httpx.AsyncClient, key_id: str, count: int) -> None:
    for _ in range(200):
        rows = (await client.get("/admin/usage", params={"key_id": key_id})).json()["data"]
        if len(rows) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} usage rows expected, {len(rows)} found")


def test_the_console_is_served_from_package_files_with_strict_headers(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient) -> None:
        root, console = await client.get("/", headers={}), await client.get("/console")
        assert root.status_code == console.status_code == 200 and root.content == console.content
        assert root.headers["content-type"].startswith("text/html")
        for path in ("/console/assets/js/main.js", "/console/assets/vendor/uplot/uPlot.esm.js"):
            asset = await client.get(path)
            assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
            assert asset.headers["content-security-policy"] == CSP
        assert (
            root.headers["x-frame-options"] == "DENY" and root.headers["x-content-type-options"] == "nosniff"
        )
        assert (await client.get("/console/assets/../../app.py")).status_code == 404

    run(tmp_path, test)


def test_me_tells_the_console_who_signed_in(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient) -> None:
        static = (await client.get("/admin/me")).json()
        assert (static["id"], static["role"], static["static"]) == (STATIC_KEY.split(".")[0], "admin", True)
        key = await new_key(client, rpm=7)
        me = (await client.get("/admin/me", headers=bearer(key))).json()
        assert (me["id"], me["role"], me["static"], me["rpm"]) == (key.split(".")[0], "user", False, 7)
        assert "key" not in me and key.split(".")[1] not in str(me), "the secret is never shown again"
        assert (await client.get("/admin/me", headers=bearer("nope.nope"))).status_code == 401

    run(tmp_path, test)


def test_usage_rows_page_and_filter_by_status(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient) -> None:
        key = await new_key(client, models=["glm-4.6"])
        key_id = key.split(".")[0]
        for _ in range(3):
            assert (
                await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
            ).status_code == 200
        refused = await client.post(
            "/v1/chat/completions", json=chat(model="glm-4.5-flash"), headers=bearer(key)
        )
        assert refused.status_code == 403
        await rows_of(client, key_id, 4)  # a refusal's row may be committed just after its answer
        first = (await client.get("/admin/usage", params={"key_id": key_id, "limit": 3})).json()
        second = (await client.get("/admin/usage", params={"key_id": key_id, "limit": 3, "offset": 3})).json()
        assert (len(first["data"]), first["has_more"], first["offset"]) == (3, True, 0)
        assert (len(second["data"]), second["has_more"]) == (1, False)
        ids = [r["id"] for r in first["data"] + second["data"]]
        assert len(set(ids)) == 4, "pages overlap"
        errors = (await client.get("/admin/usage", params={"key_id": key_id, "status": "4xx"})).json()["data"]
        assert [r["status"] for r in errors] == [403]
        ok = (await client.get("/admin/usage", params={"key_id": key_id, "status": "200"})).json()["data"]
        assert len(ok) == 3
        bad = await client.get("/admin/usage", params={"status": "teapot"})
        assert bad.status_code == 400 and "status" in bad.text

    run(tmp_path, test)


def test_limits_beyond_their_columns_are_a_400_naming_the_field(tmp_path: Path) -> None:
    async def test(client: httpx.AsyncClient) -> None:
        for field, value in (
            ("tpm", 10**12),
            ("rpm", 2**31),
            ("concurrency", 2**40),
            ("budget_tokens", 2**63),
        ):
            made = await client.post("/admin/keys", json={"name": "big", field: value})
            assert made.status_code == 400, (field, made.text)
            assert field in made.text
        fits = await client.post(
            "/admin/keys", json={"name": "fits", "tpm": 2**31 - 1, "budget_tokens": 10**15}
        )
        assert fits.status_code == 201

    run(tmp_path, test)
