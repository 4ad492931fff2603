"""``kill -9`` during 50 concurrent requests loses no usage row of a response that completed.

A response counts as completed when the client has all of it: the JSON body, or a stream's
``[DONE]``. The server commits the row before it sends those last bytes, so every completed
response must have its row in the database that the killed process leaves behind: a SQLite file
(WAL), or PostgreSQL (a fresh schema).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from . import server_process
from .accounts import chat_body
from .credentials import new_zhipu_key
from .server_process import GlmServe

REQUESTS = 50
KILL_AFTER = 15  # completed responses


@pytest.fixture(params=["sqlite", "postgresql"])
def victim(data_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[GlmServe, str]]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'kill9.db'}"
    else:
        url = request.getfixturevalue("pg_schemas").new()
    env = {"GLMSERVE_DATABASE_URL": url, "GLMSERVE_ENGINE__MAX_WAITING": "64"}
    server = server_process.start(data_dir, tmp_path / "server.log", new_zhipu_key(), env)
    try:
        yield server, url
    finally:
        server.stop()


def stored_rows(url: str) -> dict[str, int]:
    """``request_id -> status`` of every usage row the killed server left in its database."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as conn:  # opening recovers the WAL left behind
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            return {r[0]: r[1] for r in conn.execute("SELECT request_id, status FROM usage_events")}

    async def read() -> dict[str, int]:
        base, _, query = url.partition("?search_path=")
        conn = await asyncpg.connect(base, server_settings={"search_path": query})
        try:
            return {r[0]: r[1] for r in await conn.fetch("SELECT request_id, status FROM usage_events")}
        finally:
            await conn.close()

    return asyncio.run(read())


async def one(http: httpx.AsyncClient, i: int, completed: set[str]) -> None:
    request_id = f"kill9-{i}-{secrets.token_hex(4)}"
    body = chat_body(max_tokens=4 + i % 12, stream=i % 2 == 0, request_id=request_id)
    try:
        if body["stream"]:
            async with http.stream("POST", "chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        completed.add(request_id)
        else:
            response = await http.post("chat/completions", json=body)
            if response.status_code == 200 and json.loads(response.content)["usage"]:
                completed.add(request_id)
    except httpx.HTTPError:
        pass  # cut off by the kill: not completed


async def storm(server: GlmServe) -> tuple[set[str], int]:
    completed: set[str] = set()
    headers = {"Authorization": f"Bearer {server.api_key}"}
    limits = httpx.Limits(max_connections=REQUESTS + 5)
    async with httpx.AsyncClient(
        base_url=server.paas_url, headers=headers, limits=limits, timeout=120
    ) as http:
        tasks = [asyncio.create_task(one(http, i, completed)) for i in range(REQUESTS)]
        deadline = time.monotonic() + 120
        while len(completed) < KILL_AFTER:
            assert time.monotonic() < deadline, f"only {len(completed)} responses completed in 120 s"
            await asyncio.sleep(0.005)
        server.proc.send_signal(signal.SIGKILL)
        # Bytes already on their way still complete a response or two: those count as well.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return completed, REQUESTS - len(completed)


def test_kill_9_loses_no_row_of_a_completed_response(victim: tuple[GlmServe, str]) -> None:
    server, url = victim
    completed, cut_off = asyncio.run(storm(server))
    server.proc.wait(timeout=10)
    stored = stored_rows(url)
    missing = sorted(completed - set(stored))
    figures = {
        "requests": REQUESTS, "completed_before_kill": len(completed), "cut_off": cut_off,
        "rows_in_db": len(stored), "rows_of_completed": len(completed & set(stored)), "missing": len(missing),
    }  # fmt: skip
    print(f"\nkill -9: {json.dumps(figures)}")
    assert not missing, f"completed responses without a usage row: {missing}"
    assert all(stored[r] == 200 for r in completed)
    assert cut_off > 0, "the kill came after every response had completed; nothing was tested"
