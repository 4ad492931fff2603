"""store/{migrations,keys,usage,budget}.py on SQLite and on a real PostgreSQL (fresh schema each)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any, TypeVar

import pytest
from databases import with_store
from sqlalchemy import text

from glmserve.store.budget import BudgetHold, BudgetLedger, Refusal
from glmserve.store.db import Store, open_store
from glmserve.store.key_records import KeyPolicy
from glmserve.store.keys import KeyStore, hash_secret
from glmserve.store.migrations import MIGRATIONS, applied_migrations, migrate
from glmserve.store.usage import UsageQuery, UsageRow, UsageStore

T = TypeVar("T")
TABLES = {"_migrations", "api_keys", "usage_events", "usage_daily", "key_budget", "budget_holds"}
MASTER = b"\x07" * 32
DAY1 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


async def tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        else:
            rows = await conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            )
        return {str(r[0]) for r in rows}


def test_migrations_create_every_table_once(db_url: str) -> None:
    async def body(store: Store) -> tuple[set[str], list[str], list[str]]:
        again = await migrate(store.engine)
        async with store.engine.connect() as conn:
            applied = list(await applied_migrations(conn))
        return await tables(store), applied, again

    found, applied, again = with_store(db_url, body)
    assert found >= TABLES
    assert applied == [m.name for m in MIGRATIONS]
    assert again == []


def test_replicas_starting_together_apply_each_migration_once(pg_schemas: Any) -> None:
    url = pg_schemas.new()

    async def main() -> list[str]:
        stores = await asyncio.gather(*(open_store(url) for _ in range(3)))
        try:
            async with stores[0].engine.connect() as conn:
                return list(await applied_migrations(conn))
        finally:
            for store in stores:
                await store.close()

    assert asyncio.run(main()) == [m.name for m in MIGRATIONS]


def test_keys_made_before_the_policy_migration_keep_working(db_url: str) -> None:
    async def old(store: Store) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, secret_hash, secret_enc, created_at) VALUES"
                    " ('aa', 'old', 'h', 'e', 1.0)"
                )
            )

    async def first_only() -> None:
        store = await open_store(db_url, migrations=MIGRATIONS[:1])
        try:
            await old(store)
        finally:
            await store.close()

    asyncio.run(first_only())
    records = with_store(db_url, lambda store: KeyStore(store, MASTER).list())
    assert [(r.name, r.role, r.policy, r.expires_at) for r in records] == [("old", "user", KeyPolicy(), None)]


def test_key_policy_rotation_and_update_round_trip(db_url: str) -> None:
    async def body(store: Store) -> None:
        keys = KeyStore(store, MASTER)
        policy = KeyPolicy(
            models=("glm-4.6",), rpm=5, tpm=100, concurrency=2, budget_tokens=9, budget_period="month"
        )
        record, full = await keys.create("p", policy=policy, role="admin", expires_at=DAY1, created_by="cli")
        assert (await keys.get(record.id)) == record
        old_secret = full.split(".")[1]
        rotated = await keys.rotate(record.id, grace_s=60)
        assert rotated is not None
        new_secret = rotated[1].split(".")[1]
        active = await keys.get_active(record.id)
        assert active is not None and active.previous is not None
        assert [h for h, _ in active.secrets()] == [hash_secret(new_secret), hash_secret(old_secret)]
        assert await keys.rotate(record.id, grace_s=0)  # no grace: the previous secret is gone at once
        after = await keys.get_active(record.id)
        assert after is not None and after.previous is None
        updated = await keys.update(record.id, {"rpm": None, "name": "q", "models": None})
        assert updated is not None and updated.name == "q" and updated.policy.rpm is None
        assert updated.policy.models is None and updated.policy.tpm == 100 and updated.role == "admin"
        with pytest.raises(ValueError, match="role"):
            await keys.update(record.id, {"role": "admin"})
        assert await keys.revoke(record.id)
        assert await keys.rotate(record.id, 60) is None and await keys.update(record.id, {"rpm": 1}) is None

    with_store(db_url, body)


def row(i: int, **kw: Any) -> UsageRow:
    values: dict[str, Any] = {
        "id": f"r{i}",
        "created_at": DAY1 + 60 * i,
        "key_id": "k1",
        "model": "glm-4.6",
        "deployment": "d",
        "request_id": f"req-{i}",
        "stream": False,
        "status": 200,
        "error_code": None,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "latency_ms": 100.0,
        "ttft_ms": 20.0,
    }
    return UsageRow(**(values | kw))


def test_usage_rows_daily_sums_queries_and_retention(db_url: str) -> None:
    rows = [
        row(1),
        row(2, status=429, error_code="1303", prompt_tokens=0, completion_tokens=0, ttft_ms=None),
        row(3, model="glm-4.5", stream=True),
        row(4, key_id="k2"),
        row(5, created_at=DAY1 + 86400, reasoning_tokens=3, cached_tokens=4),
    ]

    async def body(store: Store) -> dict[str, Any]:
        usage = UsageStore(store)
        await usage.write(rows[:2])
        await usage.write(rows[2:])
        out = {
            "k1": await usage.events(UsageQuery(key_id="k1")),
            "model": await usage.events(UsageQuery(model="glm-4.5")),
            "req": await usage.events(UsageQuery(request_id="req-4")),
            "day2": await usage.events(UsageQuery(since="2026-01-02")),
            "daily": await usage.daily(UsageQuery(key_id="k1", until="2026-01-01")),
        }
        out["pruned"] = await usage.prune(1, now=DAY1 + 86400 + 3600)
        out["left"] = await usage.events(UsageQuery())
        out["daily_left"] = await usage.daily(UsageQuery())
        return out

    out = with_store(db_url, body)
    assert [r["id"] for r in out["k1"]] == ["r5", "r3", "r2", "r1"]  # newest first
    assert [r["id"] for r in out["model"]] == ["r3"] and out["model"][0]["stream"] is True
    assert [r["key_id"] for r in out["req"]] == ["k2"]
    assert [r["id"] for r in out["day2"]] == ["r5"]
    by_model = {d["model"]: d for d in out["daily"]}
    assert by_model["glm-4.6"]["requests"] == 2 and by_model["glm-4.6"]["errors"] == 1
    assert by_model["glm-4.6"]["total_tokens"] == 15 and by_model["glm-4.5"]["requests"] == 1
    assert out["pruned"] == 4 and [r["id"] for r in out["left"]] == ["r5"]
    assert len(out["daily_left"]) == 4, "the daily sums outlive the rows"


def test_expired_holds_no_longer_count(db_url: str) -> None:
    clock = [DAY1]

    async def body(store: Store) -> tuple[object, object, int]:
        ledger = BudgetLedger(store, hold_s=10, clock=lambda: clock[0])
        first = await ledger.reserve("k", 100, "total", 500)
        blocked = await ledger.reserve("k", 100, "total", 1)
        clock[0] += 11  # the first request's replica died: its hold lapses
        return first, blocked, isinstance(await ledger.reserve("k", 100, "total", 1), BudgetHold)

    first, blocked, later = with_store(db_url, body)
    assert isinstance(first, BudgetHold) and blocked == Refusal(100, 500) and later


def test_parallel_budget_race_overshoots_by_at_most_one_request(db_url: str) -> None:
    """20 requests race two "replicas" (separate engines) for a budget of 200 tokens.

    Each reserves a worst case of 100 and really uses 40..70; whatever the interleaving, the
    tokens spent may pass the budget by at most one request.
    """
    budget, worst = 200, 100
    rng = random.Random(7)

    async def request(ledger: BudgetLedger, usage: UsageStore, i: int) -> int | None:
        outcome = await ledger.reserve("race", budget, "total", worst)
        if isinstance(outcome, Refusal):
            return None
        await asyncio.sleep(rng.random() * 0.02)
        used = rng.randint(40, 70)
        await usage.write([row(i, key_id="race", prompt_tokens=used, completion_tokens=0, hold=outcome)])
        return used

    async def main() -> tuple[list[int | None], int]:
        stores = [await open_store(db_url), await open_store(db_url)]
        try:
            pairs = [(BudgetLedger(s, 60), UsageStore(s)) for s in stores]
            results = await asyncio.gather(*(request(*pairs[i % 2], i) for i in range(20)))
            return list(results), await pairs[0][0].spent("race", "total")
        finally:
            for store in stores:
                await store.close()

    results, spent = asyncio.run(main())
    used = [u for u in results if u is not None]
    assert spent == sum(used)
    assert 0 < len(used) < 20
    assert spent - budget <= max(used), f"overshoot {spent - budget} is more than one request ({max(used)})"
    print(f"budget race: {len(used)} admitted, {20 - len(used)} refused, spent {spent} of {budget}")


def test_concurrent_writers_on_one_sqlite_file_all_commit(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"

    async def main() -> int:
        store = await open_store(url)
        try:
            usage = UsageStore(store)
            await asyncio.gather(*(usage.write([row(i)]) for i in range(50)))
            return len(await usage.events(UsageQuery(limit=1000)))
        finally:
            await store.close()

    started = time.monotonic()
    assert asyncio.run(main()) == 50
    assert time.monotonic() - started < 20


async def holds(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text("SELECT COUNT(*) FROM budget_holds"))).scalar_one())


def test_an_uncharged_row_settles_its_hold_at_zero(db_url: str) -> None:
    """The store's half of ``cache.charge_hits``: a row marked uncharged spends nothing.

    Which rows are uncharged (cache hits, unless ``cache.charge_hits``) is the meter's choice;
    tests/api/test_cache.py checks it against servers with the setting off and on.
    """

    async def body(store: Store) -> tuple[int, int, list[dict[str, Any]], list[dict[str, Any]]]:
        ledger, usage = BudgetLedger(store, 60), UsageStore(store)
        rows = []
        for i, (hit, charged) in enumerate([(False, True), (True, False), (True, True)]):
            hold = await ledger.reserve("hits", 1000, "total", 20)
            assert isinstance(hold, BudgetHold)
            rows.append(row(i, key_id="hits", cache_hit=hit, charged=charged, hold=hold))
        held = await holds(store)
        await usage.write(rows)
        assert await holds(store) == 0, "writing the rows settles their holds"
        events = await usage.events(UsageQuery(key_id="hits"))
        return held, await ledger.spent("hits", "total"), events, await usage.daily(UsageQuery(key_id="hits"))

    held, spent, events, daily = with_store(db_url, body)
    assert held == 3, "each request holds its worst case until it settles"
    assert spent == 15 + 0 + 15, "the uncharged row spent nothing"
    assert sorted(e["cache_hit"] for e in events) == [False, True, True]
    assert daily[0]["cache_hits"] == 2 and daily[0]["requests"] == 3 and daily[0]["total_tokens"] == 45
