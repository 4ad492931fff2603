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

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from glmserve.store import usage_function

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
    Migration(
        "m002_key_policy",
        tuple(
            f"ALTER TABLE api_keys ADD COLUMN {column}"
            for column in (
                "role TEXT NOT NULL DEFAULT 'user'",
                "expires_at DOUBLE PRECISION NULL",
                "created_by TEXT NULL",
                "models TEXT NULL",  # a JSON list of model names; NULL: every model
                "rpm INTEGER NULL",
                "tpm INTEGER NULL",
                "concurrency INTEGER NULL",
                "budget_tokens BIGINT NULL",
                "budget_period TEXT NOT NULL DEFAULT 'total'",
                # A rotated-out secret, accepted until prev_valid_until (the grace period).
                "prev_secret_hash TEXT NULL",
                "prev_secret_enc TEXT NULL",
                "prev_valid_until DOUBLE PRECISION NULL",
            )
        ),
    ),
    Migration(
        "m003_usage",
        (
            """
            CREATE TABLE usage_events (
                id TEXT PRIMARY KEY,
                created_at DOUBLE PRECISION NOT NULL,
                day TEXT NOT NULL,
                key_id TEXT NOT NULL,
                model TEXT NOT NULL,
                deployment TEXT NULL,
                request_id TEXT NOT NULL,
                stream INTEGER NOT NULL,
                status INTEGER NOT NULL,
                error_code TEXT NULL,
                prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL,
                reasoning_tokens INTEGER NOT NULL,
                cached_tokens INTEGER NOT NULL,
                latency_ms DOUBLE PRECISION NOT NULL,
                ttft_ms DOUBLE PRECISION NULL,
                prompt TEXT NULL,
                output TEXT NULL
            )
            """,
            "CREATE INDEX usage_events_key_time ON usage_events (key_id, created_at)",
            "CREATE INDEX usage_events_time ON usage_events (created_at)",
            "CREATE INDEX usage_events_request ON usage_events (request_id)",
            """
            CREATE TABLE usage_daily (
                day TEXT NOT NULL,
                key_id TEXT NOT NULL,
                model TEXT NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                latency_ms_sum DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (day, key_id, model)
            )
            """,
        ),
    ),
    Migration(
        "m004_budgets",
        (
            """
            CREATE TABLE key_budget (
                key_id TEXT NOT NULL,
                period TEXT NOT NULL,
                spent BIGINT NOT NULL,
                PRIMARY KEY (key_id, period)
            )
            """,
            """
            CREATE TABLE budget_holds (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                period TEXT NOT NULL,
                tokens BIGINT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX budget_holds_key ON budget_holds (key_id, period, expires_at)",
        ),
    ),
    Migration(
        "m005_cache_hits",
        (
            "ALTER TABLE usage_events ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE usage_daily ADD COLUMN cache_hits BIGINT NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        "m006_protocol",
        ("ALTER TABLE usage_events ADD COLUMN protocol TEXT NOT NULL DEFAULT 'chat'",),
    ),
    Migration(
        "m007_responses",
        (
            """
            CREATE TABLE responses (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                model TEXT NOT NULL,
                previous_response_id TEXT NULL,
                background INTEGER NOT NULL,
                input_items TEXT NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX responses_time ON responses (created_at)",
        ),
    ),
    Migration(
        "m008_jobs",
        (
            # One row per async chat task, or per line of a batch (batch_id set, line_no its index).
            """
            CREATE TABLE jobs (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                batch_id TEXT NULL,
                line_no INTEGER NULL,
                custom_id TEXT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                model TEXT NOT NULL,
                request TEXT NOT NULL,
                result TEXT NULL,
                lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX jobs_status ON jobs (status, lease_until)",
            "CREATE INDEX jobs_batch ON jobs (batch_id, line_no)",
            """
            CREATE TABLE files (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                filename TEXT NOT NULL,
                purpose TEXT NOT NULL,
                bytes BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE batches (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                body TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        "m009_usage_estimated",
        # 1: the row's tokens are an estimate (a stream cut before its usage, counted from its text).
        ("ALTER TABLE usage_events ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        "m010_key_epoch",
        (
            # One row, counted up by every change to a key (revoke, rotate, update): replicas that
            # cache verified keys poll it and drop their cache when it moves (accounting/key_cache).
            "CREATE TABLE key_epoch (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
            "INSERT INTO key_epoch (id, n) VALUES (1, 0)",
        ),
    ),
    Migration(
        "m011_batches_status",
        # The job worker's idle check asks for active batches twice a second (store/jobs.py).
        ("CREATE INDEX batches_status ON batches (status)",),
    ),
    # PostgreSQL only: the usage writer's batch in one round trip (store/usage_function.py).
    Migration("m012_usage_function", usage_function.create),
)

_PG_LOCK_KEY = 0x676C6D73  # "glms": the advisory lock that serializes migrators
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
    async with _one_migrator(engine):
        return await _migrate(engine, migrations)


@contextlib.asynccontextmanager
async def _one_migrator(engine: AsyncEngine) -> AsyncIterator[None]:
    """On PostgreSQL, one process migrates at a time: even ``CREATE TABLE IF NOT EXISTS`` of the
    ledger fails when two replicas run it at the same moment. (SQLite's write lock suffices.)"""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


async def _migrate(engine: AsyncEngine, migrations: Sequence[Migration]) -> list[str]:
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
