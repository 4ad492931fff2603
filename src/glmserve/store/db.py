"""The database handle: one async SQLAlchemy engine, migrated on open.

SQLite (``sqlite+aiosqlite:///PATH``, the default) gets, on every new connection, WAL mode, a
5 s busy timeout and foreign keys. SQLAlchemy also takes over ``BEGIN`` from the sqlite3
driver, whose legacy mode never begins a transaction before DDL; without that a failed
migration would leave half its tables behind. PostgreSQL (``postgresql+asyncpg://``) needs
none of this and gets a plain engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from glmserve.store.migrations import MIGRATIONS, Migration, migrate

_SQLITE_PRAGMAS = (
    # busy_timeout first, so that switching to WAL waits for a lock instead of failing.
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
)


class Store:
    """The open database; ``engine`` is shared by every service that keeps data."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()


async def open_store(url: str, *, migrations: Sequence[Migration] = MIGRATIONS) -> Store:
    """Open the database at ``url`` and apply pending migrations."""
    parsed = make_url(url)
    engine = create_async_engine(parsed)
    if parsed.get_backend_name() == "sqlite":
        await asyncio.to_thread(_create_parent_dir, parsed)
        _configure_sqlite(engine)
    try:
        await migrate(engine, migrations)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine)


def _create_parent_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the "begin" hook emits BEGIN instead
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")
