"""The real services some tests need: PostgreSQL and Redis on this machine.

Where one is missing, its tests are skipped, except under CI (``CI=true``), where a missing
service fails the run instead: CI must never go green by skipping them.
Override the addresses with GLMSERVE_TEST_POSTGRES_URL / GLMSERVE_TEST_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from typing import NoReturn

import asyncpg
import pytest
import redis

POSTGRES_URLS = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/0"


def missing(service: str, why: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{service} is required under CI=true and is unavailable: {why}", pytrace=False)
    pytest.skip(f"{service} unavailable: {why}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("GLMSERVE_TEST_REDIS_URL", REDIS_URL)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        missing("Redis", f"{url}: {exc}")
    return url


# A connection is set-up, not a timed assertion: a loaded 2-core CI machine once took over 5 s
# to start a PostgreSQL backend for a fixture. A missing server is still refused at once.
CONNECT_TIMEOUT_S = 30


async def _connects(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    await conn.close()


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL that accepts connections (database ``test``)."""
    override = os.environ.get("GLMSERVE_TEST_POSTGRES_URL")
    errors = []
    for url in (override,) if override else POSTGRES_URLS:
        try:
            asyncio.run(_connects(url))
            return url
        except (OSError, asyncpg.PostgresError) as exc:
            errors.append(f"{url}: {exc}")
    missing("PostgreSQL", "; ".join(errors))


class Schemas:
    """Fresh PostgreSQL schemas, each dropped at the end of the session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def new(self) -> str:
        """A database URL whose ``search_path`` is a new, empty schema."""
        name = f"glmserve_test_{secrets.token_hex(6)}"
        asyncio.run(_execute(self.url, f'CREATE SCHEMA "{name}"'))
        self.created.append(name)
        return f"{self.url}?search_path={name}"

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_execute(self.url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_schemas(postgres_url: str) -> Iterator[Schemas]:
    schemas = Schemas(postgres_url)
    try:
        yield schemas
    finally:
        schemas.drop_all()
