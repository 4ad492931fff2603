"""store/migrations.py: ordered, named migrations, each applied exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from glmserve.store.db import open_store
from glmserve.store.migrations import MIGRATIONS, Migration, applied_migrations, migrate


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"


def _open_and_report(url: str, migrations: Sequence[Migration] = MIGRATIONS) -> tuple[list[str], list[str]]:
    """Open the store; return (names applied by a second migrate call, tables present)."""

    async def main() -> tuple[list[str], list[str]]:
        store = await open_store(url, migrations=migrations)
        try:
            again = await migrate(store.engine, migrations)
            async with store.engine.connect() as conn:
                rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
                return again, sorted(str(r[0]) for r in rows)
        finally:
            await store.close()

    return asyncio.run(main())


def _applied(url: str) -> dict[str, float]:
    async def main() -> dict[str, float]:
        store = await open_store(url)
        try:
            async with store.engine.connect() as conn:
                return await applied_migrations(conn)
        finally:
            await store.close()

    return asyncio.run(main())


def test_first_open_applies_all_and_records_them(tmp_path: Path) -> None:
    again, tables = _open_and_report(_url(tmp_path))
    assert again == []
    assert {"_migrations", "api_keys"} <= set(tables)
    applied = _applied(_url(tmp_path))
    assert list(applied) == [m.name for m in MIGRATIONS]
    assert all(at > 1.7e9 for at in applied.values())


def test_opening_twice_applies_nothing_new(tmp_path: Path) -> None:
    first = _applied(_url(tmp_path))
    second = _applied(_url(tmp_path))
    assert first == second


def test_new_migrations_run_in_order_once(tmp_path: Path) -> None:
    order: list[str] = []

    async def step(conn: AsyncConnection) -> None:
        order.append("m901")
        await conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": 1})

    migrations = (
        *MIGRATIONS,
        Migration("m900_t", ("CREATE TABLE t (x INTEGER)",)),
        Migration("m901_fill", step),
    )
    _open_and_report(_url(tmp_path))  # an older database: only the shipped migrations
    again, tables = _open_and_report(_url(tmp_path), migrations)
    _open_and_report(_url(tmp_path), migrations)
    assert again == [] and "t" in tables
    assert order == ["m901"]
    assert list(_applied(_url(tmp_path))) == [*(m.name for m in MIGRATIONS), "m900_t", "m901_fill"]


def test_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = (*MIGRATIONS, Migration("m900_broken", ("CREATE TABLE half (x INTEGER)", "NOT SQL")))
    with pytest.raises(OperationalError):
        _open_and_report(_url(tmp_path), broken)
    _, tables = _open_and_report(_url(tmp_path))
    assert "half" not in tables
    assert "m900_broken" not in _applied(_url(tmp_path))


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        _open_and_report(_url(tmp_path), (*MIGRATIONS, *MIGRATIONS))
