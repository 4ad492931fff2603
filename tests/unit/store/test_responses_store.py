"""store/responses.py: stored responses are scoped to their key; chains, status updates, retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from glmserve.store.db import open_store
from glmserve.store.responses import ResponseStore, StoredResponse


def record(
    response_id: str,
    previous: str | None = None,
    *,
    key: str = "k1",
    status: str = "completed",
    age_days: float = 0,
) -> StoredResponse:
    body = {"id": response_id, "status": status, "output": [{"id": f"out-{response_id}"}]}
    return StoredResponse(
        id=response_id,
        key_id=key,
        created_at=time.time() - age_days * 86400,
        status=status,
        model="m",
        previous_response_id=previous,
        background=False,
        input_items=[{"id": f"in-{response_id}"}],
        body=body,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    return str(request.getfixturevalue("pg_schemas").new())


def with_store(url: str, work: Callable[[ResponseStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await open_store(url)
        try:
            return await work(ResponseStore(store))
        finally:
            await store.close()

    return asyncio.run(main())


def test_a_response_is_read_and_deleted_only_with_its_own_key(db_url: str) -> None:
    async def work(store: ResponseStore) -> None:
        await store.insert(record("r1"))
        assert (await store.get("r1", "k1")) is not None
        assert await store.get("r1", "k2") is None and await store.chain("r1", "k2") == []
        assert not await store.delete("r1", "k2") and await store.delete("r1", "k1")
        assert await store.get("r1", "k1") is None

    with_store(db_url, work)


def test_a_chain_comes_back_oldest_first_and_survives_a_gap(db_url: str) -> None:
    async def work(store: ResponseStore) -> None:
        for rid, prev in (("a", None), ("b", "a"), ("c", "b"), ("d", "c")):
            await store.insert(record(rid, prev))
        await store.insert(record("x", "c", key="k2"))  # another key's continuation is not in k1's chain
        chain = await store.chain("d", "k1")
        assert [body["id"] for _, body in chain] == ["a", "b", "c", "d"]
        assert [items[0]["id"] for items, _ in chain] == ["in-a", "in-b", "in-c", "in-d"]
        assert await store.chain("x", "k2") == [([{"id": "in-x"}], (await store.get("x", "k2")).body)]  # type: ignore[union-attr]
        await store.delete("b", "k1")
        assert [body["id"] for _, body in await store.chain("d", "k1")] == ["c", "d"]

    with_store(db_url, work)


def test_updates_move_only_from_the_given_statuses(db_url: str) -> None:
    async def work(store: ResponseStore) -> None:
        await store.insert(record("q", status="queued"))
        assert await store.update("q", {"status": "in_progress"}, only_from=("queued",))
        assert not await store.update("q", {"status": "in_progress"}, only_from=("queued",))
        assert await store.update("q", {"status": "cancelled"})
        assert not await store.update("q", {"status": "completed"}, only_from=("in_progress",))
        found = await store.get("q", "k1")
        assert found is not None and found.status == "cancelled" and found.body == {"status": "cancelled"}

    with_store(db_url, work)


def test_retention_deletes_old_finished_responses_only(db_url: str) -> None:
    async def work(store: ResponseStore) -> None:
        await store.insert(record("old", age_days=40))
        await store.insert(record("old-running", age_days=40, status="in_progress"))
        await store.insert(record("new", age_days=1))
        assert await store.prune(30) == 1
        assert await store.get("old", "k1") is None
        assert await store.get("old-running", "k1") is not None and await store.get("new", "k1") is not None

    with_store(db_url, work)
