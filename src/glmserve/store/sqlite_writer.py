"""One SQLite write transaction without waking another thread: the usage writer's path on SQLite.

Through SQLAlchemy's async engine every statement of a transaction is a round trip to
aiosqlite's thread (checkout, BEGIN, each statement, COMMIT, the pool's reset), about ten
hops for a usage batch, each waking that thread and then the event loop. ``SqliteWriter`` runs
a whole batch of statements on a plain ``sqlite3`` connection with the store's pragmas:

- **inline**, on the event loop's own connection, when the write lock is free: in WAL mode
  without an fsync (``synchronous=NORMAL``) a usage batch is some tens of microseconds of SQLite,
  less than the two thread wake-ups a hop costs, and the request waiting for its row is answered
  sooner. That connection never waits for a lock (its busy timeout is 0) and never checkpoints
  (``wal_autocheckpoint=0``), so it cannot stall the loop on another process's transaction or
  on an fsync;
- **on the writer thread**, whose connection waits up to the busy timeout, whenever another
  process (a second replica on the same file, the ``glmserve keys`` command) holds the write
  lock. The thread also runs a WAL checkpoint after every ``CHECKPOINT_EVERY`` inline
  transactions, off the loop (the batch that reached the count waits for it, as SQLite's own
  autocheckpoint makes one commit in a few hundred wait), so the WAL is reused, not grown.

Measured on the 2-core VM (one client, ``/v1/embeddings`` one input at a time): the usage row's
commit, from its hand-over to the usage writer to done, 0.42-0.53 ms through the thread and
0.24-0.34 ms inline (three runs each; the transaction itself, alone, 64 µs). Under load (16
connections through the hot-path benchmark's stored key, 6 s each): 878 requests/s with every
batch on the thread, 950 with every batch inline, and 702-752 with small batches inline and
large ones on the thread: each connection finds the other's commits and discards its page cache,
so one connection writes unless the lock forces the other.

The store's in-process writer lock still serializes both with every other writer. Errors come
back as SQLAlchemy's exceptions (``IntegrityError``, ``OperationalError``, …), so callers handle
one family whichever path wrote.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.exc import DBAPIError

Statements = Sequence[tuple[str, Sequence[dict[str, Any]]]]
CHECKPOINT_EVERY = 100
_INLINE_PRAGMAS = ("PRAGMA busy_timeout=0", "PRAGMA wal_autocheckpoint=0")
log = logging.getLogger("glmserve.store")


class Busy(Exception):
    """The inline connection found the database locked (another process is writing)."""


class SqliteWriter:
    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self._path = path
        self._pragmas = pragmas
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glmserve-sqlite-writer")
        self._local = threading.local()
        self._inline: sqlite3.Connection | None = None
        self._since_checkpoint = 0

    async def run(self, statements: Statements) -> None:
        """Execute each (SQL, parameter sets) in order, in one transaction; all or nothing."""
        loop = asyncio.get_running_loop()
        try:
            _execute(self._inline_connection(), statements, busy_is_error=False)
        except Busy:  # another process writes: wait for it on the thread, not on the loop
            await loop.run_in_executor(self._thread, self._run, statements)
            return
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            # Awaited, under the store's writer lock: no write comes in between, so the next
            # transaction finds the WAL copied back whole and starts it again from the top.
            self._since_checkpoint = 0
            await loop.run_in_executor(self._thread, self._wal_checkpoint)

    def read_one(self, sql: str) -> Any:
        """The first column of the first row of ``sql``, read on the loop's own connection (a WAL
        read waits for no writer); ``Busy`` in the rare case it would have to."""
        try:
            row = self._inline_connection().execute(sql).fetchone()
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise Busy from exc
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error, hide_parameters=True) from exc
        return None if row is None else row[0]

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)
        if self._inline is not None:
            self._inline.close()
            self._inline = None

    def _inline_connection(self) -> sqlite3.Connection:
        if self._inline is None:
            self._inline = _connect(self._path, (*self._pragmas, *_INLINE_PRAGMAS))
        return self._inline

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._path, self._pragmas)
        return conn

    def _run(self, statements: Statements) -> None:
        _execute(self._connection(), statements, busy_is_error=True)

    def _wal_checkpoint(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next one catches up; the data is safe in the WAL
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)

    def _close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _connect(path: str, pragmas: Sequence[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        conn.execute(pragma)
    return conn


def _execute(conn: sqlite3.Connection, statements: Statements, *, busy_is_error: bool) -> None:
    """One transaction of ``statements``; ``Busy`` (nothing done) if the lock is taken and
    ``busy_is_error`` is false, else SQLAlchemy's exception for any failure."""
    sql = "BEGIN"
    try:
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
        if not busy_is_error and _is_busy(exc):
            raise Busy from exc
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error, hide_parameters=True) from exc


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # extended: SQLITE_BUSY_SNAPSHOT is 5 | 2 << 8
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "database is locked" in str(exc)
