"""One database per test, on SQLite and a real PostgreSQL (the ``db_url`` fixture in conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from glmserve.store.db import Store, open_store

T = TypeVar("T")


def with_store(url: str, body: Callable[[Store], Awaitable[T]]) -> T:
    """``body`` on the store opened at ``url``, closed after, in an event loop of its own."""

    async def main() -> T:
        store = await open_store(url)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())
