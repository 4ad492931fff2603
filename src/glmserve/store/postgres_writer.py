"""One PostgreSQL write transaction on an asyncpg connection of its own: the usage writer's path.

Through SQLAlchemy each statement of a batch is compiled, adapted and awaited on its own, and
the transaction's BEGIN and COMMIT are statements too; a pooled connection also costs a
pre-ping (``SELECT 1``) at checkout and a ``ROLLBACK`` at return. ``PostgresWriter`` keeps one
asyncpg connection for ``Store.run`` alone (the engine's pool serves everything else), opened
on first use with the engine's own connection arguments, and runs a batch with asyncpg's
``executemany`` in one transaction: BEGIN, one round trip per statement, COMMIT. The session
commits without waiting for the WAL's fsync (``synchronous_commit = off``, a setting of the
connection, so no ``SET`` per batch). Measured on the 2-core VM, one usage row per transaction,
200 in a row, median: 1.42 ms through a pooled connection with ``SET LOCAL`` per batch,
0.60-0.77 ms here (two runs).

``call`` runs one statement instead, in a transaction of its own: one round trip. The usage
writer calls a function that runs its batch's statements (``store/usage_function.py``).

Batches run one at a time on the connection (a lock; the usage writer sends one at a time
anyway). A connection that breaks is dropped and the next batch opens another, so a database
restart costs the batches in flight, which the usage writer retries. The statements keep
SQLAlchemy's ``:name`` parameters; each is turned into asyncpg's ``$n`` form once.

Errors come back as SQLAlchemy's exceptions: a constraint violation as ``IntegrityError``, a
refused statement as ``ProgrammingError`` / ``DataError``, anything else (the server went away,
is restarting, the connection broke) as a plain ``DBAPIError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

Statements = Sequence[tuple[str, Sequence[dict[str, Any]]]]
# The commit returns once PostgreSQL has the transaction in its WAL buffers, not after the WAL's
# fsync (at most 3 × wal_writer_delay, 600 ms by default, later): glmserve's own crash loses
# nothing, only a crash of the database server or its machine can lose the last commits; the
# trade SQLite's WAL with synchronous=NORMAL makes (store/db.py). A usage batch's commit is on
# every answer's path: on this VM the fsync was most of it (1.5 ms of 1.8 ms at c=1).
ASYNC_COMMIT = {"synchronous_commit": "off"}
CONNECT_TIMEOUT_S = 10.0
_NAME = re.compile(r"(?<![:\w]):(\w+)")


@functools.cache
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters as ``$1…$n`` (numbered by first appearance) and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAME.sub(number, sql), tuple(names)


@dataclass(slots=True)
class _Failing:
    sql: str


class PostgresWriter:
    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        """``connect_kwargs``: ``asyncpg.connect``'s, as the engine's dialect makes them."""
        settings = dict(connect_kwargs.get("server_settings") or {}) | ASYNC_COMMIT
        self._kwargs = connect_kwargs | {"server_settings": settings}
        self._kwargs.setdefault("timeout", CONNECT_TIMEOUT_S)
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def run(self, statements: Statements) -> None:
        """Execute each (SQL, parameter sets) in order, in one transaction; all or nothing."""
        async with self._lock, self._failures("BEGIN") as failing:
            conn = await self._connection()
            async with conn.transaction():
                for sql, params in statements:
                    if params:
                        failing.sql = sql
                        query, names = positional(sql)
                        await conn.executemany(query, [tuple(p[n] for n in names) for p in params])

    async def call(self, sql: str, *args: Any) -> None:
        """Execute one statement with ``$n`` parameters, in a transaction of its own: one round
        trip (``store/usage_function.py``)."""
        async with self._lock, self._failures(sql):
            await (await self._connection()).execute(sql, *args)

    @contextlib.asynccontextmanager
    async def _failures(self, sql: str) -> AsyncIterator[_Failing]:
        """Raise what fails inside as SQLAlchemy's exceptions, naming the statement that failed
        (``_Failing.sql``, which the body updates); a failure of the server drops the connection."""
        failing = _Failing(sql)
        try:
            yield failing
        except asyncpg.PostgresError as exc:
            refused = _refused(exc)
            if refused is None:
                self._drop()
                raise DBAPIError(failing.sql, None, exc) from exc
            raise refused(failing.sql, None, exc) from exc
        # The connection was closed under it, or asyncpg's protocol lost its state (a
        # server restart mid-batch once surfaced as InternalClientError): the server failed,
        # not the statement, so it is raised as a plain DBAPIError and the batch is retried.
        except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            self._drop()
            raise DBAPIError(failing.sql, None, exc) from exc
        except BaseException:  # OSError (unreachable), a cancellation mid-transaction
            self._drop()
            raise

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    conn.terminate()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(**self._kwargs)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


def _refused(exc: asyncpg.PostgresError) -> type[DBAPIError] | None:
    """The SQLAlchemy class of a statement the server refused; None: the server failed."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError
    if isinstance(exc, asyncpg.SyntaxOrAccessError):
        return ProgrammingError
    if isinstance(exc, asyncpg.DataError):
        return DataError
    return None
