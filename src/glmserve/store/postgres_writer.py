"""One PostgreSQL write transaction on asyncpg itself: the usage writer's path on PostgreSQL.

Through SQLAlchemy each statement of a batch is compiled, adapted and awaited on its own, and
the transaction's BEGIN and COMMIT are statements too. ``run_asyncpg`` takes a connection from
the engine's pool (checked by its pre-ping, as any other) and runs the batch with asyncpg's
``executemany`` inside one asyncpg transaction, committed without waiting for the WAL's fsync
(``_ASYNC_COMMIT``). The statements keep SQLAlchemy's ``:name``
parameters; each is turned into asyncpg's ``$n`` form once.

Errors come back as SQLAlchemy's exceptions: a constraint violation as ``IntegrityError``, a
refused statement as ``ProgrammingError`` / ``DataError``, anything else (the server went away,
is restarting, the connection broke) as a plain ``DBAPIError``, and the broken connection is
dropped from the pool.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

Statements = Sequence[tuple[str, Sequence[dict[str, Any]]]]
# The commit returns once PostgreSQL has the transaction in its WAL buffers, not after the WAL's
# fsync (at most 3 × wal_writer_delay, 600 ms by default, later): glmserve's own crash loses
# nothing, only a crash of the database server or its machine can lose the last commits; the
# trade SQLite's WAL with synchronous=NORMAL makes (store/db.py). A usage batch's commit is on
# every answer's path: on this VM the fsync was most of it (1.5 ms of 1.8 ms at c=1).
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
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


async def run_asyncpg(engine: AsyncEngine, statements: Statements) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        sql = "BEGIN"
        try:
            async with pg.transaction():
                await pg.execute(_ASYNC_COMMIT)
                for sql, params in statements:
                    if params:
                        query, names = positional(sql)
                        await pg.executemany(query, [tuple(p[n] for n in names) for p in params])
        except asyncpg.PostgresError as exc:
            refused = _refused(exc)
            if refused is None:
                await conn.invalidate()
                raise DBAPIError(sql, None, exc) from exc
            raise refused(sql, None, exc) from exc
        except asyncpg.InterfaceError as exc:  # e.g. the connection was closed under it
            await conn.invalidate()
            raise DBAPIError(sql, None, exc) from exc
        except OSError:
            await conn.invalidate()
            raise


def _refused(exc: asyncpg.PostgresError) -> type[DBAPIError] | None:
    """The SQLAlchemy class of a statement the server refused; None: the server failed."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError
    if isinstance(exc, asyncpg.SyntaxOrAccessError):
        return ProgrammingError
    if isinstance(exc, asyncpg.DataError):
        return DataError
    return None
