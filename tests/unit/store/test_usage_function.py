"""store/usage_function.py against the statements it mirrors, on a real PostgreSQL.

The same batches go into two fresh schemas: through ``Store.run`` with ``usage.statements``
(what SQLite runs) and through ``UsageStore.write`` (one call of the function). Every table they
touch must end the same, row for row: a column added to the statements but not to the function
(or the other way round) fails here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from glmserve.store.budget import BudgetHold
from glmserve.store.db import Store, open_store
from glmserve.store.usage import UsageRow, UsageStore, statements

TABLES = {
    "usage_events": "id",
    "usage_daily": "day, key_id, model",
    "key_budget": "key_id, period",
    "budget_holds": "id",
}
DAY1 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOLDS = [  # (id, key, period, tokens): two of k1's own requests, an allowance of k2's
    ("own-1", "k1", "2026-01", 300),
    ("own-2", "k1", "2026-01", 300),
    ("allowance", "k2", "total", 10_000),
]


def batches() -> list[list[UsageRow]]:
    allowance = BudgetHold("allowance", "k2", "total", 400, shared=True)
    first = [
        UsageRow("a1", DAY1 + 1.25, "k1", "glm-4.6", "d1", "req-a1", False, 200, None, 10, 5,
                 latency_ms=12.5, ttft_ms=None, hold=BudgetHold("own-1", "k1", "2026-01", 300)),
        UsageRow("a2", DAY1 + 2.5, "k2", "glm-4.6", None, "req-a2", True, 200, None, 7, 9, 3, 2,
                 latency_ms=40.0, ttft_ms=8.75, protocol="messages", hold=allowance,
                 prompt='a "quoted" \\ prompt, 中文', output="it's\nfine"),
        UsageRow("a3", DAY1 + 3.0, "k2", "glm-4.6", "d1", "req-a3", True, 499, "client_closed", 7, 4,
                 latency_ms=5.0, usage_estimated=True, hold=allowance),
    ]  # fmt: skip
    second = [  # the same day, key and model again: the daily sums add up
        UsageRow("b1", DAY1 + 60.0, "k1", "glm-4.6", "d2", "req-b1", False, 200, None, 1, 1,
                 latency_ms=1.0, cache_hit=True, charged=False,
                 hold=BudgetHold("own-2", "k1", "2026-01", 300)),
        UsageRow("b2", DAY1 + 86_400.0, "k3", "embedding-3", None, "req-b2", False, 400,
                 "invalid_request", protocol="embeddings"),
    ]  # fmt: skip
    return [first, second]


async def contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    async with store.engine.connect() as conn:
        return {
            table: [tuple(r) for r in await conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]
            for table, key in TABLES.items()
        }


async def written(url: str, through_function: bool) -> dict[str, list[tuple[Any, ...]]]:
    store = await open_store(url)
    try:
        assert store.calls, "PostgreSQL through asyncpg has the one-call path"
        async with store.engine.begin() as conn:
            for hold in HOLDS:
                await conn.execute(
                    text("INSERT INTO budget_holds (id, key_id, period, tokens, expires_at)"
                         " VALUES (:id, :k, :p, :t, :e)"),
                    {"id": hold[0], "k": hold[1], "p": hold[2], "t": hold[3], "e": time.time() + 600},
                )  # fmt: skip
        for batch in batches():
            if through_function:
                await UsageStore(store).write(batch)
            else:
                await store.run(statements(batch))
        return await contents(store)
    finally:
        await store.close()


def test_the_function_writes_what_the_statements_write(pg_schemas: Any) -> None:
    by_statements = asyncio.run(written(pg_schemas.new(), through_function=False))
    by_function = asyncio.run(written(pg_schemas.new(), through_function=True))
    # budget_holds' expires_at differs between the two schemas (each inserted its own): compare
    # the rest of each hold.
    for found in (by_statements, by_function):
        found["budget_holds"] = [h[:4] for h in found["budget_holds"]]
    assert by_function == by_statements
    assert len(by_function["usage_events"]) == 5
    assert by_function["budget_holds"] == [("allowance", "k2", "total", 10_000 - 800)], (
        "both requests on the allowance shrank it; the own holds ended"
    )
    spent = dict(((k, p), s) for k, p, s in by_function["key_budget"])
    assert spent == {("k1", "2026-01"): 15, ("k2", "total"): 16 + 11}, "the uncharged row spent nothing"


def test_a_replayed_batch_is_refused_whole(pg_schemas: Any) -> None:
    """The usage writer's retry after a lost acknowledgement meets its own primary keys: the
    function refuses the batch as an IntegrityError and changes nothing."""
    url = pg_schemas.new()

    async def main() -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
        store = await open_store(url)
        try:
            usage = UsageStore(store)
            first = batches()[0]
            await usage.write(first)
            before = await contents(store)
            with pytest.raises(IntegrityError):
                await usage.write(first)
            return before, await contents(store)
        finally:
            await store.close()

    before, after = asyncio.run(main())
    assert after == before
