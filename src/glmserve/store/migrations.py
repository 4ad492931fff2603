"""Ordered, named schema migrations, defined in code and applied once each at start-up.

Each migration is a name plus either a tuple of SQL statements or an async callable taking
the connection. ``migrate`` records every applied name in ``_migrations`` and runs each
pending migration in its own transaction together with that record, so a failed migration
leaves neither its changes nor its record behind.

The record is inserted *before* the migration runs: the insert takes the write lock (SQLite)
or the row lock (PostgreSQL), so a second process starting at the same moment waits, then
hits the primary key and skips the migration instead of applying it twice.

SQL here must run unchanged on SQLite and PostgreSQL. Timestamps are ``DOUBLE PRECISION``
(epoch seconds): PostgreSQL's ``REAL`` is a 4-byte float, too coarse for an epoch time, and
SQLite gives ``DOUBLE PRECISION`` the same REAL affinity.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MigrationFn = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    name: str
    steps: tuple[str, ...] | MigrationFn

    async def apply(self, conn: AsyncConnection) -> None:
        if isinstance(self.steps, tuple):
            for statement in self.steps:
                await conn.execute(text(statement))
        else:
            await self.steps(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "m001_api_keys",
        (
            """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT,
                secret_hash TEXT NOT NULL,
                secret_enc TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION NULL
            )
            """,
        ),
    ),
)

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS _migrations (
    name TEXT PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
)
"""


async def applied_migrations(conn: AsyncConnection) -> dict[str, float]:
    """Names of the applied migrations, mapped to when they were applied (epoch seconds)."""
    rows = await conn.execute(text("SELECT name, applied_at FROM _migrations ORDER BY applied_at, name"))
    return {str(name): float(at) for name, at in rows}


async def migrate(engine: AsyncEngine, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the pending migrations in order; return the names applied by this call."""
    _check_unique(migrations)
    async with engine.begin() as conn:
        await conn.execute(text(_CREATE_LEDGER))
        done = set(await applied_migrations(conn))
    applied: list[str] = []
    async with engine.connect() as conn:
        for migration in migrations:
            if migration.name not in done and await _apply_one(conn, migration):
                applied.append(migration.name)
    return applied


async def _apply_one(conn: AsyncConnection, migration: Migration) -> bool:
    async with conn.begin() as trans:
        try:
            await conn.execute(
                text("INSERT INTO _migrations (name, applied_at) VALUES (:name, :at)"),
                {"name": migration.name, "at": time.time()},
            )
        except IntegrityError:
            # Another process claimed (and so applied) it between our read and this insert.
            await trans.rollback()
            return False
        await migration.apply(conn)
    return True


def _check_unique(migrations: Sequence[Migration]) -> None:
    names = [m.name for m in migrations]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate migration names in {names}")
