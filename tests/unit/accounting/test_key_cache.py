"""key_cache.py: a verified key costs no database read, and every change to a key reaches every
replica within a second. Two ``KeyStore``s on one SQLite file stand for two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from glmserve.accounting.auth import Authenticator
from glmserve.accounting.key_cache import TRUST_S, KeyCache
from glmserve.errors import AuthError, Unavailable
from glmserve.store.db import open_store
from glmserve.store.key_records import ActiveKey
from glmserve.store.keys import KeyStore, load_or_create_master_key


class CountingStore(KeyStore):
    """A key store that counts its reads of keys (what the cache is there to save)."""

    reads = 0
    down = False

    async def get_active(self, key_id: str) -> ActiveKey | None:
        if self.down:
            raise Unavailable("key store unavailable")
        self.reads += 1
        return await super().get_active(key_id)

    async def epoch(self) -> int:
        if self.down:
            raise Unavailable("key store unavailable")
        return await super().epoch()


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[CountingStore, CountingStore]]:
    master = load_or_create_master_key(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    a_store, b_store = await open_store(url), await open_store(url)
    try:
        yield CountingStore(a_store, master), CountingStore(b_store, master)
    finally:
        await a_store.close()
        await b_store.close()


def run(coro_fn) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(coro_fn())


async def accepted(auth: Authenticator, key: str) -> bool:
    try:
        await auth.authenticate(f"Bearer {key}")
    except AuthError:
        return False
    return True


async def seconds_until_refused(auth: Authenticator, key: str, limit_s: float = 3.0) -> float:
    started = time.monotonic()
    while await accepted(auth, key):
        assert time.monotonic() - started < limit_s, "never refused"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_a_cached_key_is_verified_without_reading_the_database(tmp_path: Path) -> None:
    async def main() -> None:
        async with replicas(tmp_path) as (a, _):
            _, key = await a.create("cached")
            cache = KeyCache(a)
            cache.start()
            try:
                await asyncio.sleep(0.05)  # the first poll makes the cache current
                auth = Authenticator(a, None, cache=cache)
                for _ in range(50):
                    assert await accepted(auth, key)
                assert a.reads == 1
                assert not await accepted(auth, key[:-1] + ("x" if key[-1] != "x" else "y"))
                assert a.reads == 2, "a wrong secret for a cached key is checked against the database"
            finally:
                await cache.close()

    run(main)


@pytest.mark.parametrize("change", ["revoke", "rotate", "update"])
def test_a_change_on_one_replica_reaches_the_other_within_a_second(tmp_path: Path, change: str) -> None:
    async def main() -> None:
        async with replicas(tmp_path) as (a, b):
            record, key = await a.create("shared")
            caches = [KeyCache(a), KeyCache(b)]
            for cache in caches:
                cache.start()
            try:
                await asyncio.sleep(0.05)
                auth_a = Authenticator(a, None, cache=caches[0])
                auth_b = Authenticator(b, None, cache=caches[1])
                assert await accepted(auth_a, key) and await accepted(auth_b, key)
                if change == "revoke":
                    assert await a.revoke(record.id)
                    assert not await accepted(auth_a, key), "this replica: at once"
                    assert await seconds_until_refused(auth_b, key) < TRUST_S
                elif change == "rotate":
                    rotated = await a.rotate(record.id, grace_s=0)
                    assert rotated is not None
                    assert await accepted(auth_b, rotated[1]), "the new secret works at once everywhere"
                    assert await seconds_until_refused(auth_b, key) < TRUST_S
                else:
                    assert await a.update(record.id, {"rpm": 7}) is not None
                    started = time.monotonic()
                    while (await auth_b.authenticate(f"Bearer {key}")).policy.rpm != 7:
                        assert time.monotonic() - started < TRUST_S
                        await asyncio.sleep(0.01)
            finally:
                for cache in caches:
                    await cache.close()

    run(main)


def test_an_unanswered_poll_stops_the_cache_being_trusted(tmp_path: Path) -> None:
    async def main() -> None:
        async with replicas(tmp_path) as (a, b):
            record, key = await a.create("outage")
            cache = KeyCache(b, trust_s=0.3)
            cache.start()
            try:
                await asyncio.sleep(0.05)
                auth = Authenticator(b, None, cache=cache)
                assert await accepted(auth, key)
                b.down = True
                await asyncio.sleep(0.4)
                assert not cache.current and cache.get(record.id) is None
                assert await accepted(auth, key), "stale if error: a key seen just now still works"
                b.down = False
                assert await a.revoke(record.id)
                assert await seconds_until_refused(auth, key) < TRUST_S
            finally:
                await cache.close()

    run(main)


def test_the_old_secret_leaves_the_cache_when_its_grace_ends(tmp_path: Path) -> None:
    async def main() -> None:
        async with replicas(tmp_path) as (a, b):
            record, key = await a.create("grace")
            cache = KeyCache(b)
            cache.start()
            try:
                await asyncio.sleep(0.05)
                auth = Authenticator(b, None, cache=cache)
                rotated = await a.rotate(record.id, grace_s=0.6)
                assert rotated is not None
                assert await accepted(auth, key) and await accepted(auth, rotated[1])
                await asyncio.sleep(0.7)
                assert not await accepted(auth, key)
                assert await accepted(auth, rotated[1])
            finally:
                await cache.close()

    run(main)
