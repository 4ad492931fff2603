"""Stored Responses API objects (``responses``, migration ``m007_responses``).

One row per stored response: the Response object as served (``body``), the input items of its
request (``input_items``), its key, status and the response it continued. Every read and write
is scoped to the key that made it, so another key's id reads as absent (a 404). ``chain``
rebuilds a conversation in one recursive query, oldest response first; a response whose
ancestor was deleted (or pruned) continues from what is left. ``prune`` is the usage retention.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text

from glmserve.store.db import Store

MAX_CHAIN = 1000  # responses walked back from one previous_response_id
ACTIVE = ("queued", "in_progress")
_COLUMNS = "id, key_id, created_at, status, model, previous_response_id, background, input_items, body"
_CHAIN = """
WITH RECURSIVE chain (id, previous_response_id, input_items, body, depth) AS (
    SELECT id, previous_response_id, input_items, body, 0 FROM responses
    WHERE id = :id AND key_id = :key_id
    UNION ALL
    SELECT r.id, r.previous_response_id, r.input_items, r.body, c.depth + 1
    FROM responses r JOIN chain c ON r.id = c.previous_response_id
    WHERE r.key_id = :key_id AND c.depth < :max_depth
)
SELECT input_items, body FROM chain ORDER BY depth DESC
"""


@dataclass(slots=True)
class StoredResponse:
    id: str
    key_id: str
    created_at: float
    status: str
    model: str
    previous_response_id: str | None
    background: bool
    input_items: list[dict[str, Any]]
    body: dict[str, Any]

    def params(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "status": self.status,
            "model": self.model,
            "previous_response_id": self.previous_response_id,
            "background": int(self.background),
            "input_items": _dumps(self.input_items),
            "body": _dumps(self.body),
        }


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _record(row: Any) -> StoredResponse:
    return StoredResponse(
        id=row.id,
        key_id=row.key_id,
        created_at=float(row.created_at),
        status=row.status,
        model=row.model,
        previous_response_id=row.previous_response_id,
        background=bool(row.background),
        input_items=orjson.loads(row.input_items),
        body=orjson.loads(row.body),
    )


class ResponseStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def insert(self, record: StoredResponse) -> None:
        names = _COLUMNS.split(", ")
        sql = f"INSERT INTO responses ({_COLUMNS}) VALUES ({', '.join(':' + n for n in names)})"
        async with self._store.write() as conn:
            await conn.execute(text(sql), record.params())

    async def update(
        self, response_id: str, body: dict[str, Any], *, only_from: Sequence[str] = ACTIVE
    ) -> bool:
        """Replace the object and its status, if its status is still one of ``only_from``."""
        allowed = ", ".join(f"'{status}'" for status in only_from)
        sql = f"UPDATE responses SET status = :status, body = :body WHERE id = :id AND status IN ({allowed})"
        async with self._store.write() as conn:
            result = await conn.execute(
                text(sql), {"id": response_id, "status": body["status"], "body": _dumps(body)}
            )
            return bool(result.rowcount)

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        sql = f"SELECT {_COLUMNS} FROM responses WHERE id = :id AND key_id = :key_id"
        async with self._store.engine.connect() as conn:
            row = (await conn.execute(text(sql), {"id": response_id, "key_id": key_id})).first()
        return None if row is None else _record(row)

    async def chain(self, response_id: str, key_id: str) -> list[tuple[list[Any], dict[str, Any]]]:
        """``(input items, response)`` of ``response_id`` and its ancestors, oldest first."""
        params = {"id": response_id, "key_id": key_id, "max_depth": MAX_CHAIN}
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(text(_CHAIN), params)).all()
        return [(orjson.loads(items), orjson.loads(body)) for items, body in rows]

    async def delete(self, response_id: str, key_id: str) -> bool:
        async with self._store.write() as conn:
            result = await conn.execute(
                text("DELETE FROM responses WHERE id = :id AND key_id = :key_id"),
                {"id": response_id, "key_id": key_id},
            )
            return bool(result.rowcount)

    async def prune(self, older_than_days: int, *, now: float | None = None) -> int:
        """Delete finished responses older than ``older_than_days`` (the usage retention)."""
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        sql = "DELETE FROM responses WHERE created_at < :cutoff AND status NOT IN ('queued', 'in_progress')"
        async with self._store.write() as conn:
            result = await conn.execute(text(sql), {"cutoff": cutoff})
            return int(result.rowcount or 0)
