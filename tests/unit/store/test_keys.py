"""store/keys.py: Zhipu-format keys, the master key file, and what reaches the database."""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text

from glmserve.errors import GlmError
from glmserve.store.db import open_store
from glmserve.store.keys import ApiKeyRecord, KeyStore, hash_secret, load_or_create_master_key

T = TypeVar("T")
KEY_FORMAT = re.compile(r"[0-9a-f]{32}\.[A-Za-z0-9]{16}")


def with_keys(tmp_path: Path, body: Callable[[KeyStore], Awaitable[T]], master: bytes | None = None) -> T:
    async def main() -> T:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        try:
            return await body(KeyStore(store, master or load_or_create_master_key(tmp_path)))
        finally:
            await store.close()

    return asyncio.run(main())


def test_create_returns_a_zhipu_format_key_and_its_record(tmp_path: Path) -> None:
    async def body(keys: KeyStore) -> tuple[ApiKeyRecord, str, list[ApiKeyRecord]]:
        record, full = await keys.create("ci")
        return record, full, await keys.list()

    record, full, listed = with_keys(tmp_path, body)
    assert KEY_FORMAT.fullmatch(full)
    assert full.split(".")[0] == record.id
    assert record.name == "ci" and record.revoked_at is None and record.created_at > 1.7e9
    assert listed == [record]


def test_get_secret_returns_hash_and_secret_of_active_keys(tmp_path: Path) -> None:
    async def body(keys: KeyStore) -> tuple[str, tuple[str, str] | None, tuple[str, str] | None]:
        record, full = await keys.create()
        return full, await keys.get_secret(record.id), await keys.get_secret("0" * 32)

    full, found, missing = with_keys(tmp_path, body)
    secret = full.split(".")[1]
    assert found == (hash_secret(secret), secret)
    assert missing is None


def test_revoke_count_and_list(tmp_path: Path) -> None:
    async def body(keys: KeyStore) -> tuple[bool, bool, bool, int, list[ApiKeyRecord], object]:
        first, _ = await keys.create("a")
        await keys.create("b")
        once = await keys.revoke(first.id)
        twice = await keys.revoke(first.id)
        unknown = await keys.revoke("f" * 32)
        return once, twice, unknown, await keys.count(), await keys.list(), await keys.get_secret(first.id)

    once, twice, unknown, count, listed, secret = with_keys(tmp_path, body)
    assert (once, twice, unknown) == (True, False, False)
    assert count == 2
    assert [r.name for r in listed] == ["a", "b"]
    assert listed[0].revoked_at is not None and listed[1].revoked_at is None
    assert secret is None


def _db_bytes(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in tmp_path.glob("g.db*")]  # the WAL and shm files too


def test_database_never_holds_the_plain_secret(tmp_path: Path) -> None:
    async def body(keys: KeyStore) -> tuple[str, list[bytes]]:
        full = (await keys.create("x"))[1]
        return full, _db_bytes(tmp_path)  # while open: the row may still be in the WAL

    full, while_open = with_keys(tmp_path, body)
    secret = full.split(".")[1].encode()
    assert while_open and _db_bytes(tmp_path)
    assert all(secret not in blob for blob in [*while_open, *_db_bytes(tmp_path)])


def test_secrets_are_bound_to_their_key_id(tmp_path: Path) -> None:
    async def main() -> None:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        keys = KeyStore(store, load_or_create_master_key(tmp_path))
        try:
            a, _ = await keys.create()
            b, _ = await keys.create()
            async with store.engine.begin() as conn:  # give b the ciphertext of a
                enc = await conn.execute(text("SELECT secret_enc FROM api_keys WHERE id = :id"), {"id": a.id})
                await conn.execute(
                    text("UPDATE api_keys SET secret_enc = :enc WHERE id = :id"),
                    {"enc": enc.scalar_one(), "id": b.id},
                )
            await keys.get_secret(b.id)
        finally:
            await store.close()

    with pytest.raises(GlmError, match="cannot be decrypted"):
        asyncio.run(main())


def test_wrong_master_key_is_reported_without_the_secret(tmp_path: Path) -> None:
    async def create(keys: KeyStore) -> tuple[str, str]:
        record, full = await keys.create()
        return record.id, full

    key_id, full = with_keys(tmp_path, create)

    async def read(keys: KeyStore) -> object:
        return await keys.get_secret(key_id)

    with pytest.raises(GlmError) as caught:
        with_keys(tmp_path, read, master=b"\x01" * 32)
    assert full.split(".")[1] not in str(caught.value)


def test_master_key_file_is_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_or_create_master_key(data_dir)
    mode = stat.S_IMODE((data_dir / "master.key").stat().st_mode)
    assert len(first) == 32 and mode == 0o600
    assert load_or_create_master_key(data_dir) == first
    assert [p.name for p in data_dir.iterdir()] == ["master.key"]  # no temp file left


def test_master_key_of_wrong_length_is_refused(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_bytes(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        load_or_create_master_key(tmp_path)
    with pytest.raises(ValueError):
        asyncio.run(_keystore_with_short_key(tmp_path))


async def _keystore_with_short_key(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    try:
        KeyStore(store, b"short")
    finally:
        await store.close()
