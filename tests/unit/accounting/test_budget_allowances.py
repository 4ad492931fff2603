"""accounting/budget_allowances.py with store/budget.py on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time

from databases import with_store
from sqlalchemy import text

from glmserve.accounting.budget_allowances import (
    ALLOWANCE_REQUESTS,
    COVER_S,
    MOST_REQUESTS,
    Allowance,
    BudgetAllowances,
    requests_for,
)
from glmserve.store.budget import BudgetHold, BudgetLedger, Grant, Refusal
from glmserve.store.db import Store, open_store
from glmserve.store.usage import UsageRow, UsageStore

DAY1 = 1_767_225_600.0


def row(i: int, key_id: str, used: int, hold: BudgetHold) -> UsageRow:
    return UsageRow(
        id=f"r{i}", created_at=DAY1, key_id=key_id, model="glm-4.6", deployment="d", request_id=f"q{i}",
        stream=False, status=200, error_code=None, prompt_tokens=used, completion_tokens=0,
        latency_ms=1.0, ttft_ms=1.0, hold=hold,
    )  # fmt: skip


async def holds(store: Store) -> tuple[int, int]:
    """(rows, tokens held) in budget_holds."""
    async with store.engine.connect() as conn:
        found = await conn.execute(text("SELECT COUNT(*), COALESCE(SUM(tokens), 0) FROM budget_holds"))
        count, tokens = found.one()
        return int(count), int(tokens)


def test_a_steady_key_takes_one_allowance_and_settles_exactly(db_url: str) -> None:
    async def body(store: Store) -> tuple[list[tuple[int, int]], int, tuple[int, int]]:
        ledger, usage = BudgetLedger(store, 60), UsageStore(store)
        allowances = BudgetAllowances(ledger)
        seen = []
        taken = [await allowances.reserve("k", 1_000_000, "total", 100) for _ in range(10)]
        assert all(isinstance(h, BudgetHold) and h.shared for h in taken)
        seen.append(await holds(store))
        await usage.write([row(i, "k", 30 + i, h) for i, h in enumerate(taken) if isinstance(h, BudgetHold)])
        seen.append(await holds(store))
        await allowances.close()
        return seen, await ledger.spent("k", "total"), await holds(store)

    seen, spent, after = with_store(db_url, body)
    assert seen[0] == (1, 100 * ALLOWANCE_REQUESTS), "ten requests, one row holding the allowance"
    assert seen[1] == (1, 100 * (ALLOWANCE_REQUESTS - 10)), "each settled request shrank it by its hold"
    assert spent == sum(30 + i for i in range(10))
    assert after == (1, 0), "closing gave back the remainder"


def test_near_the_end_each_request_holds_its_own_row(db_url: str) -> None:
    async def body(store: Store) -> tuple[object, object, object, tuple[int, int]]:
        allowances = BudgetAllowances(BudgetLedger(store, 60))
        first = await allowances.reserve("k", 700, "total", 100)  # room for 7: less than 8 requests
        second = await allowances.reserve("k", 700, "total", 100)
        held = await holds(store)
        over = [await allowances.reserve("k", 700, "total", 100) for _ in range(6)]
        return first, second, over[-1], held

    first, second, last, held = with_store(db_url, body)
    assert isinstance(first, BudgetHold) and not first.shared
    assert isinstance(second, BudgetHold) and second.id != first.id
    assert held == (2, 200)
    assert last == Refusal(700, 700), "the seventh request filled the budget; the eighth is refused"


def test_two_replicas_racing_for_a_budget_never_overshoot(db_url: str) -> None:
    """200 requests on two replicas (two engines) for a budget that fits about 140 of them."""
    budget, worst = 100 * 200, 140
    rng = random.Random(11)

    async def request(allowances: BudgetAllowances, usage: UsageStore, i: int) -> int | None:
        outcome = await allowances.reserve("race", budget, "total", worst)
        if isinstance(outcome, Refusal):
            return None
        await asyncio.sleep(rng.random() * 0.01)
        used = rng.randint(80, 120)
        await usage.write([row(i, "race", used, outcome)])
        return used

    async def main() -> tuple[list[int | None], int, tuple[int, int]]:
        stores = [await open_store(db_url), await open_store(db_url)]
        try:
            ledger = BudgetLedger(stores[0], 60)
            replicas = [(BudgetAllowances(BudgetLedger(s, 60)), UsageStore(s)) for s in stores]
            results = await asyncio.gather(*(request(*replicas[i % 2], i) for i in range(200)))
            for allowances, _ in replicas:
                await allowances.close()
            return list(results), await ledger.spent("race", "total"), await holds(stores[0])
        finally:
            for store in stores:
                await store.close()

    results, spent, (_, held) = asyncio.run(main())
    used = [u for u in results if u is not None]
    assert spent == sum(used)
    assert spent - budget <= max(used), f"overshoot {spent - budget} is more than one request"
    assert held == 0, "every hold settled or was given back"
    assert len(used) >= budget // worst, f"only {len(used)} admitted: allowances kept budget from requests"


def test_a_changed_budget_retires_the_allowance(db_url: str) -> None:
    async def body(store: Store) -> tuple[object, object, tuple[int, int]]:
        allowances = BudgetAllowances(BudgetLedger(store, 60))
        before = await allowances.reserve("k", 1_000_000, "total", 100)
        after = await allowances.reserve("k", 200, "total", 100)  # lowered: the allowance is retired
        return before, after, await holds(store)

    before, after, held = with_store(db_url, body)
    assert isinstance(before, BudgetHold) and before.shared
    assert isinstance(after, BudgetHold) and not after.shared, "a budget with room for 1: own hold"
    assert held == (2, 200), "the first request's share and the second's own hold; the rest given back"


def test_an_idle_allowance_gives_back_its_remainder(db_url: str) -> None:
    async def body(store: Store) -> tuple[tuple[int, int], tuple[int, int]]:
        allowances = BudgetAllowances(BudgetLedger(store, 60), usable_s=0.2)
        await allowances.reserve("k", 1_000_000, "total", 100)
        held = await holds(store)
        await asyncio.sleep(0.2)
        # The give-back is a database write scheduled at usable_s: wait for it, within a
        # deadline that a loaded CI machine still meets, rather than for a fixed 0.3 s margin.
        deadline = time.monotonic() + 10
        later = await holds(store)
        while later != (1, 100) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            later = await holds(store)
        return held, later

    held, later = with_store(db_url, body)
    assert held == (1, 100 * ALLOWANCE_REQUESTS)
    assert later == (1, 100), "after usable_s only the admitted request's share stays held"


def test_a_busy_key_gets_allowances_sized_to_its_rate() -> None:
    """The next allowance covers about ``COVER_S`` of the rate its key used the last one at,
    between the first size and ``MOST_REQUESTS``."""
    grant = Grant("g", "k", "total", 6400, 0.0)

    used = Allowance(grant, 10**9, 0, 100.0, taken_at=50.0, admitted=64)  # 64 requests from t=50

    assert requests_for(None, 50.0) == ALLOWANCE_REQUESTS
    assert requests_for(used, 50.1) == round(640 * COVER_S), "64 requests in 0.1 s: 640/s"
    assert requests_for(used, 50.001) == MOST_REQUESTS, "however fast, at most this"
    assert requests_for(used, 55.0) == ALLOWANCE_REQUESTS, "a slow key keeps the first size"


def test_a_key_that_used_its_allowance_up_fast_takes_a_larger_one(db_url: str) -> None:
    async def body(store: Store) -> list[tuple[int, int]]:
        allowances = BudgetAllowances(BudgetLedger(store, 60))
        seen = []
        for _ in range(ALLOWANCE_REQUESTS):  # the first allowance, used up at once
            assert isinstance(await allowances.reserve("k", 10**12, "total", 100), BudgetHold)
        seen.append(await holds(store))
        assert isinstance(await allowances.reserve("k", 10**12, "total", 100), BudgetHold)
        seen.append(await holds(store))
        await allowances.close()
        return seen

    first, second = with_store(db_url, body)
    assert first == (1, 100 * ALLOWANCE_REQUESTS)
    rows, held = second
    assert rows == 2 and held - 100 * ALLOWANCE_REQUESTS > 100 * ALLOWANCE_REQUESTS, (
        "the second allowance covers more requests than the first"
    )
    assert held - 100 * ALLOWANCE_REQUESTS <= 100 * MOST_REQUESTS
