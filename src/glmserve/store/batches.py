"""Batches (``batches``, migration ``m008_jobs``): the OpenAI batch object as JSON, plus its status.

Lines are rows in ``jobs`` (``store.jobs``), inserted in the batch's own transaction: a worker
never sees a line whose batch is missing (it would cancel the line) nor an active batch without
its lines (finalize would complete it empty). ``update`` is conditional on the current status, so
two replicas finalizing the same batch, or a cancel racing a finalize, settle on one outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text

from glmserve.store.db import Store
from glmserve.store.jobs import Job, insert_jobs

ACTIVE = ("in_progress", "cancelling")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class BatchStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def insert(self, key_id: str, body: dict[str, Any], lines: Sequence[Job] = ()) -> None:
        """The batch and its ``lines`` (job rows), committed together."""
        sql = (
            "INSERT INTO batches (id, key_id, created_at, status, body)"
            " VALUES (:id, :key, :at, :status, :body)"
        )
        params = {"id": body["id"], "key": key_id, "at": body["created_at"], "status": body["status"]}
        async with self._store.write() as conn:
            await conn.execute(text(sql), {**params, "body": _dumps(body)})
            if lines:
                await insert_jobs(conn, lines)

    async def get(self, batch_id: str, key_id: str | None = None) -> tuple[str, dict[str, Any]] | None:
        """``(key id, batch object)``; ``key_id`` given: only that key's batch."""
        sql = "SELECT key_id, body FROM batches WHERE id = :id" + (" AND key_id = :key" if key_id else "")
        async with self._store.engine.connect() as conn:
            row = (await conn.execute(text(sql), {"id": batch_id, "key": key_id})).first()
        return None if row is None else (row.key_id, orjson.loads(row.body))

    async def list(self, key_id: str, limit: int, after: str | None) -> list[dict[str, Any]]:
        where = "key_id = :key"
        if after:
            where += " AND created_at < (SELECT created_at FROM batches WHERE id = :after)"
        sql = f"SELECT body FROM batches WHERE {where} ORDER BY created_at DESC LIMIT :limit"
        async with self._store.engine.connect() as conn:
            rows = await conn.execute(text(sql), {"key": key_id, "after": after, "limit": limit})
            return [orjson.loads(row.body) for row in rows]

    async def active(self) -> list[tuple[str, dict[str, Any]]]:
        active = ", ".join(f"'{status}'" for status in ACTIVE)
        sql = f"SELECT key_id, body FROM batches WHERE status IN ({active}) ORDER BY created_at"
        async with self._store.engine.connect() as conn:
            return [(row.key_id, orjson.loads(row.body)) for row in await conn.execute(text(sql))]

    async def update(self, body: dict[str, Any], only_from: Sequence[str]) -> bool:
        allowed = ", ".join(f"'{status}'" for status in only_from)
        sql = f"UPDATE batches SET status = :status, body = :body WHERE id = :id AND status IN ({allowed})"
        params = {"id": body["id"], "status": body["status"], "body": _dumps(body)}
        async with self._store.write() as conn:
            return bool((await conn.execute(text(sql), params)).rowcount)
