"""store/db.py: SQLite connection set-up (WAL, busy timeout, foreign keys, transactional DDL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from glmserve.store.db import open_store


def _pragmas(url: str) -> dict[str, object]:
    async def main() -> dict[str, object]:
        store = await open_store(url)
        try:
            async with store.engine.connect() as conn:
                return {
                    name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                    for name in ("journal_mode", "busy_timeout", "foreign_keys")
                }
        finally:
            await store.close()

    return asyncio.run(main())


def test_sqlite_file_gets_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    pragmas = _pragmas(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1}


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "g.db"
    _pragmas(f"sqlite+aiosqlite:///{path}")
    assert path.is_file()


def test_memory_database_opens(tmp_path: Path) -> None:
    assert _pragmas("sqlite+aiosqlite:///:memory:")["foreign_keys"] == 1


def test_transactions_roll_back_ddl(tmp_path: Path) -> None:
    async def main() -> list[str]:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        try:
            conn = await store.engine.connect()
            trans = await conn.begin()
            await conn.execute(text("CREATE TABLE scratch (x INTEGER)"))
            await trans.rollback()
            await conn.close()
            async with store.engine.connect() as conn:
                rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
                return sorted(str(r[0]) for r in rows)
        finally:
            await store.close()

    assert "scratch" not in asyncio.run(main())
