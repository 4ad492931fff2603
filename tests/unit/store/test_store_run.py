"""Store.run (store/sqlite_writer.py, store/postgres_writer.py): one transaction, all or nothing,
SQLAlchemy's exceptions — on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from glmserve.store import sqlite_writer
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


def test_sqlite_writes_inline_and_waits_off_the_loop_for_another_process(tmp_path: Any) -> None:
    """The event loop's own connection never waits on a lock: while another connection (another
    process) holds the write lock, the batch goes to the writer thread, the loop keeps turning,
    and the batch commits once the lock is free."""
    path = tmp_path / "g.db"

    async def main() -> tuple[int, float, list[tuple[str, int]]]:
        store = await open_store(f"sqlite+aiosqlite:///{path}")
        try:
            await store.run([(INSERT, [{"key_id": "inline", "period": "total", "spent": 1}])])
            other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            other.execute("BEGIN IMMEDIATE")
            loop = asyncio.get_running_loop()
            loop.call_later(0.5, other.execute, "COMMIT")
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticking = asyncio.create_task(tick())
            started = loop.time()
            await store.run([(INSERT, [{"key_id": "waited", "period": "total", "spent": 2}])])
            waited = loop.time() - started
            ticking.cancel()
            other.close()
            async with store.engine.connect() as conn:
                rows = await conn.execute(text("SELECT key_id, spent FROM key_budget ORDER BY key_id"))
                return ticks, waited, [(str(r[0]), int(r[1])) for r in rows]
        finally:
            await store.close()

    ticks, waited, rows = asyncio.run(main())
    assert rows == [("inline", 1), ("waited", 2)]
    assert waited >= 0.4, f"committed in {waited:.3f}s while another connection held the lock"
    assert ticks >= 20, f"the loop turned only {ticks} times while the batch waited"


def test_sqlite_inline_writes_keep_the_wal_checkpointed(tmp_path: Any, monkeypatch: Any) -> None:
    """The inline connection never checkpoints; the writer thread does, every CHECKPOINT_EVERY
    batches, so the WAL does not grow with the number of commits."""
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_EVERY", 20)
    path = tmp_path / "g.db"

    async def main() -> int:
        store = await open_store(f"sqlite+aiosqlite:///{path}")
        try:
            for n in range(600):
                await store.run([(INSERT, [{"key_id": f"k{n}", "period": "total", "spent": n}])])
                await asyncio.sleep(0)  # a checkpoint runs on the thread meanwhile
            with sqlite3.connect(path) as conn:  # while the store is open (a last close checkpoints)
                _busy, log_pages, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(log_pages)
        finally:
            await store.close()

    log_pages = asyncio.run(main())
    # 600 commits of a few pages each would leave well over a thousand pages in an unchecked WAL.
    assert log_pages < 300, f"{log_pages} pages in the WAL after 600 commits"


def test_a_many_row_sqlite_batch_commits_whole_or_not_at_all(tmp_path: Any) -> None:
    """A loaded server's batch of many rows: one transaction, a clash anywhere undoes it all."""
    rows = [{"key_id": f"k{n:02d}", "period": "total", "spent": n} for n in range(40)]

    async def main() -> tuple[int, int]:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        try:
            await store.run([(INSERT, rows)])
            clash = [{"key_id": f"new{n}", "period": "total", "spent": 0} for n in range(10)] + [rows[0]]
            with pytest.raises(IntegrityError):
                await store.run([(INSERT, clash)])
            async with store.engine.connect() as conn:
                counted = (await conn.execute(text("SELECT count(*), sum(spent) FROM key_budget"))).one()
            return int(counted[0]), int(counted[1])
        finally:
            await store.close()

    count, spent = asyncio.run(main())
    assert count == len(rows), "the clashing batch left rows behind"
    assert spent == sum(r["spent"] for r in rows)


def test_postgres_protocol_failure_mid_batch_is_a_retryable_error_and_reconnects(
    pg_schemas: Any, monkeypatch: Any
) -> None:
    """asyncpg's InternalClientError (seen once when PostgreSQL restarted under a batch) is the
    server's failure: a plain DBAPIError, which the usage recorder retries; the next batch runs
    on a new connection."""
    import asyncpg

    from glmserve.store.db import unreachable

    real = asyncpg.Connection.executemany
    failures = [asyncpg.InternalClientError("protocol state lost")]

    async def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(self, *args, **kwargs)

    url = pg_schemas.new()

    async def main() -> tuple[BaseException, bool, list[str]]:
        store = await open_store(url)
        try:
            await store.run([(INSERT, [{"key_id": "a", "period": "total", "spent": 1}])])
            first = store._postgres._conn  # type: ignore[union-attr]
            monkeypatch.setattr(asyncpg.Connection, "executemany", flaky)
            with pytest.raises(DBAPIError) as failed:
                await store.run([(INSERT, [{"key_id": "b", "period": "total", "spent": 2}])])
            await store.run([(INSERT, [{"key_id": "b", "period": "total", "spent": 2}])])
            reconnected = store._postgres._conn is not first  # type: ignore[union-attr]
            async with store.engine.connect() as conn:
                rows = await conn.execute(text("SELECT key_id FROM key_budget ORDER BY key_id"))
                found = [str(r[0]) for r in rows]
            return failed.value, reconnected, found
        finally:
            await store.close()

    error, reconnected, rows = asyncio.run(main())
    assert type(error) is DBAPIError and unreachable(error)
    assert reconnected
    assert rows == ["a", "b"]


def test_scalar_reads_what_any_connection_committed(db_url: str) -> None:
    """``Store.scalar`` (the key cache's epoch poll): on SQLite it reads on the loop's own
    connection and still sees another connection's commit; None for no row; on PostgreSQL too."""

    async def main() -> tuple[Any, Any, Any]:
        store = await open_store(db_url)
        try:
            sql = "SELECT spent FROM key_budget WHERE key_id = 'poll'"
            before = await store.scalar(sql)
            async with store.write() as conn:  # SQLAlchemy's connection, not the inline one
                await conn.execute(text(INSERT), {"key_id": "poll", "period": "total", "spent": 7})
            after = await store.scalar(sql)
            await store.run([("UPDATE key_budget SET spent = :s WHERE key_id = 'poll'", [{"s": 8}])])
            return before, after, await store.scalar(sql)
        finally:
            await store.close()

    assert asyncio.run(main()) == (None, 7, 8)


def test_scalar_on_sqlite_falls_back_when_the_inline_read_is_busy(tmp_path: Any, monkeypatch: Any) -> None:
    """A busy inline read (another process holding the database, rare in WAL) is read through
    the engine instead, which waits for the lock, rather than failing the poll."""

    def busy(self: Any, sql: str) -> Any:
        raise sqlite_writer.Busy

    async def main() -> Any:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        try:
            await store.run([(INSERT, [{"key_id": "x", "period": "total", "spent": 3}])])
            monkeypatch.setattr(sqlite_writer.SqliteWriter, "read_one", busy)
            return await store.scalar("SELECT spent FROM key_budget WHERE key_id = 'x'")
        finally:
            await store.close()

    assert asyncio.run(main()) == 3
