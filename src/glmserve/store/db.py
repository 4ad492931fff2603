"""The database handle: one async SQLAlchemy engine, migrated on open.

SQLite (``sqlite+aiosqlite:///PATH``, the default) gets, on every new connection, WAL mode with
``synchronous=NORMAL``, a 5 s busy timeout and foreign keys. SQLAlchemy also takes over
``BEGIN`` from the sqlite3 driver, whose legacy mode never begins a transaction before DDL;
without that a failed migration would leave half its tables behind. PostgreSQL
(``postgresql+asyncpg://``) needs none of this and gets a plain engine; ``postgresql://`` and
``postgres://`` mean asyncpg, and a ``search_path`` query parameter selects the schema.

A PostgreSQL pool checks each connection before use (``pool_pre_ping``), so a database restart
costs no request a dead connection. SQLite takes one writer at a time. ``Store.write()``
queues this process's writers on an ``asyncio.Lock`` (on the event loop, not in a driver thread
spinning on the busy timeout); PostgreSQL takes writers concurrently and the lock is a no-op there.

``Store.run`` executes a batch of statements as one write transaction: on a SQLite file
inline or in one hop to a writer thread (``sqlite_writer``), on PostgreSQL on an asyncpg
connection of its own with asyncpg's ``executemany`` (``postgres_writer``), elsewhere through the
engine. ``Store.call`` runs one statement on that PostgreSQL connection: the usage writer's
batch as one function call (``usage_function``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, NotSupportedError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from glmserve.store.migrations import MIGRATIONS, Migration, migrate
from glmserve.store.postgres_writer import PostgresWriter
from glmserve.store.sqlite_writer import Busy, SqliteWriter, Statements

_SQLITE_PRAGMAS = (
    # busy_timeout first, so that switching to WAL waits for a lock instead of failing.
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    # In WAL mode NORMAL syncs at checkpoints, not on every commit: a committed transaction is in
    # the WAL file (the OS's page cache) and survives the process being killed; only a power loss
    # or an OS crash can take the last commits back. FULL costs an fsync per usage batch.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached, was restarting or busy — not a refused statement.

    asyncpg's "the database system is shutting down / starting up" and "terminating connection
    due to administrator command" arrive as a plain ``DBAPIError``; a statement the database
    refused is one of the subclasses excluded here.
    """
    if isinstance(exc, OSError):
        return True
    refused = IntegrityError | ProgrammingError | DataError | NotSupportedError
    return isinstance(exc, DBAPIError) and not isinstance(exc, refused)


class Store:
    """The open database; ``engine`` is shared by every service that keeps data."""

    def __init__(self, engine: AsyncEngine, connect_args: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self._writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        plain_file = bool(path) and path != ":memory:" and not str(path).startswith("file:")
        self._sqlite = SqliteWriter(str(path), _SQLITE_PRAGMAS) if plain_file else None
        self._postgres: PostgresWriter | None = None
        if engine.dialect.driver == "asyncpg":
            _, kwargs = engine.dialect.create_connect_args(engine.url)
            self._postgres = PostgresWriter(dict(kwargs) | (connect_args or {}))

    async def run(self, statements: Statements) -> None:
        """Each (SQL with ``:name`` parameters, parameter sets) in order, in one write transaction."""
        if self._sqlite is not None:
            async with self._writer or contextlib.nullcontext():
                await self._sqlite.run(statements)
            return
        if self._postgres is not None:
            await self._postgres.run(statements)
            return
        async with self.write() as conn:
            for sql, params in statements:
                if params:
                    await conn.execute(text(sql), list(params))

    @property
    def calls(self) -> bool:
        """``call`` is open: PostgreSQL through asyncpg."""
        return self._postgres is not None

    async def call(self, sql: str, *args: Any) -> None:
        """One statement with ``$n`` parameters in a write transaction of its own (``calls``)."""
        if self._postgres is None:
            raise NotImplementedError("Store.call needs PostgreSQL through asyncpg")
        await self._postgres.call(sql, *args)

    async def scalar(self, sql: str) -> Any:
        """One value read (``sql`` takes no parameters). On a SQLite file it is read on the event
        loop's own connection, with no thread hop: the key cache asks four times a second."""
        if self._sqlite is not None:
            with contextlib.suppress(Busy):
                return self._sqlite.read_one(sql)
        async with self.engine.begin() as conn:
            return (await conn.execute(text(sql))).scalar_one_or_none()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite, one at a time in this process."""
        async with self._writer or contextlib.nullcontext(), self.engine.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._postgres is not None:
            await self._postgres.close()
        await self.engine.dispose()


async def open_store(url: str, *, migrations: Sequence[Migration] = MIGRATIONS) -> Store:
    """Open the database at ``url`` and apply pending migrations."""
    parsed, connect_args = _normalize(url)
    # PostgreSQL: a pooled connection is checked before use, so one that a database restart
    # closed is replaced instead of failing the request that drew it.
    pre_ping = parsed.get_backend_name() == "postgresql"
    engine = create_async_engine(parsed, connect_args=connect_args, pool_pre_ping=pre_ping)
    if parsed.get_backend_name() == "sqlite":
        await asyncio.to_thread(_create_parent_dir, parsed)
        _configure_sqlite(engine)
    try:
        await migrate(engine, migrations)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine, connect_args)


def _normalize(url: str) -> tuple[URL, dict[str, Any]]:
    """``postgres[ql]://`` means asyncpg; ``?search_path=`` becomes a server setting."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return parsed, {}
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    schema = parsed.query.get("search_path")
    if not schema:
        return parsed, {}
    parsed = parsed.difference_update_query(["search_path"])
    return parsed, {"server_settings": {"search_path": str(schema)}}


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
