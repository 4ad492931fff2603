"""One SQLite write transaction in one thread hop: the usage writer's path on SQLite.

Through SQLAlchemy's async engine every statement of a transaction is a round trip to
aiosqlite's thread (checkout, BEGIN, each statement, COMMIT, the pool's reset), about ten
hops for a usage batch, each waking that thread and then the event loop. ``SqliteWriter`` runs
a whole batch of statements in a thread of its own, on a plain ``sqlite3`` connection with the
store's pragmas, and wakes the loop once. The store's in-process writer lock still serializes
it with every other writer, so it never spins on the busy timeout against them.

Errors come back as SQLAlchemy's exceptions (``IntegrityError``, ``OperationalError``, …), so
callers handle one family whichever path wrote.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.exc import DBAPIError

Statements = Sequence[tuple[str, Sequence[dict[str, Any]]]]


class SqliteWriter:
    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self._path = path
        self._pragmas = pragmas
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glmserve-sqlite-writer")
        self._local = threading.local()

    async def run(self, statements: Statements) -> None:
        """Execute each (SQL, parameter sets) in order, in one transaction; all or nothing."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._run, statements)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None)
            for pragma in self._pragmas:
                conn.execute(pragma)
            self._local.conn = conn
        return conn

    def _run(self, statements: Statements) -> None:
        sql = "BEGIN"
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    if params:
                        conn.executemany(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error, hide_parameters=True) from exc

    def _close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
