"""Store.run (store/sqlite_writer.py, store/postgres_writer.py): one transaction, all or nothing,
SQLAlchemy's exceptions — on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from glmserve.store.db import open_store

INSERT = "INSERT INTO key_budget (key_id, period, spent) VALUES (:key_id, :period, :spent)"


def test_a_batch_commits_whole_or_not_at_all(db_url: str) -> None:
    async def main() -> tuple[list[tuple[str, int]], str, str]:
        store = await open_store(db_url)
        try:
            await store.run([(INSERT, [{"key_id": "a", "period": "total", "spent": 1}])])
            duplicate = [
                (INSERT, [{"key_id": "b", "period": "total", "spent": 2}]),
                (INSERT, [{"key_id": "a", "period": "total", "spent": 3}]),  # a's row exists
            ]
            with pytest.raises(IntegrityError) as clash:
                await store.run(duplicate)
            with pytest.raises(DBAPIError) as refused:  # as each driver names it, through SQLAlchemy
                await store.run([("INSERT INTO no_such_table (x) VALUES (:x)", [{"x": 1}])])
            async with store.engine.connect() as conn:
                rows = await conn.execute(text("SELECT key_id, spent FROM key_budget ORDER BY key_id"))
                found = [(str(r[0]), int(r[1])) for r in rows]
            return found, type(clash.value.orig).__name__, type(refused.value.orig).__name__
        finally:
            await store.close()

    rows, clash, refused = asyncio.run(main())
    assert rows == [("a", 1)], "b's row went with the failed batch"
    assert clash in ("IntegrityError", "UniqueViolationError"), clash
    assert refused in ("OperationalError", "UndefinedTableError"), refused
