"""Token budgets: a hold for the worst case before the call, settled against the real use after.

``key_budget`` keeps what each key has spent per period (``YYYY-MM`` or ``total``);
``budget_holds`` keeps the worst cases of its requests still running. ``reserve`` admits a
request while spent + held is below the budget, then holds the request's worst case; so
parallel requests can overshoot the budget by at most one request (the last one admitted).

Serializing ``reserve`` per key: its first statement upserts the key's ``key_budget`` row,
which takes that row's lock on PostgreSQL and the write lock on SQLite, so concurrent
reservations (from any replica) read spent + held one at a time. Settling (``settle``) runs
inside the usage writer's transaction, so a request's row, its spending and the end of its
hold commit together. A hold whose replica died expires on its own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from glmserve.errors import Unavailable
from glmserve.store.db import Store
from glmserve.store.key_records import BudgetPeriod

_LOCK_ROW = (
    "INSERT INTO key_budget (key_id, period, spent) VALUES (:key_id, :period, 0)"
    " ON CONFLICT (key_id, period) DO UPDATE SET spent = key_budget.spent"
)
_SPENT_AND_HELD = (
    "SELECT b.spent + COALESCE((SELECT SUM(h.tokens) FROM budget_holds h WHERE h.key_id = :key_id"
    " AND h.period = :period AND h.expires_at > :now), 0) FROM key_budget b"
    " WHERE b.key_id = :key_id AND b.period = :period"
)
_HOLD = (
    "INSERT INTO budget_holds (id, key_id, period, tokens, expires_at)"
    " VALUES (:id, :key_id, :period, :tokens, :expires_at)"
)
_SPEND = (
    "INSERT INTO key_budget (key_id, period, spent) VALUES (:key_id, :period, :spent)"
    " ON CONFLICT (key_id, period) DO UPDATE SET spent = key_budget.spent + excluded.spent"
)


def period_of(kind: BudgetPeriod, now: float) -> str:
    return "total" if kind == "total" else datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def next_period_start(now: float) -> datetime:
    """When a monthly budget resets: the first of next month, UTC."""
    day = datetime.fromtimestamp(now, UTC)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BudgetHold:
    id: str
    key_id: str
    period: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """The budget is used up: ``spent`` (plus held) has reached ``budget``."""

    budget: int
    used: int


class BudgetLedger:
    def __init__(self, store: Store, hold_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._hold_s = hold_s
        self._clock = clock

    async def reserve(
        self, key_id: str, budget: int, kind: BudgetPeriod, tokens: int
    ) -> BudgetHold | Refusal:
        now = self._clock()
        hold = BudgetHold(secrets.token_hex(12), key_id, period_of(kind, now), tokens)
        params = {"key_id": key_id, "period": hold.period, "now": now}
        try:
            async with self._store.write() as conn:
                await conn.execute(text(_LOCK_ROW), params)
                used = int((await conn.execute(text(_SPENT_AND_HELD), params)).scalar_one())
                if used >= budget:
                    return Refusal(budget, used)
                await conn.execute(
                    text(_HOLD), {**params, "id": hold.id, "tokens": tokens, "expires_at": now + self._hold_s}
                )
        except OperationalError as exc:
            raise Unavailable("budget ledger unavailable", retry_after=1) from exc
        return hold

    async def spent(self, key_id: str, kind: BudgetPeriod) -> int:
        params = {"key_id": key_id, "period": period_of(kind, self._clock())}
        async with self._store.engine.connect() as conn:
            row = await conn.execute(
                text("SELECT spent FROM key_budget WHERE key_id = :key_id AND period = :period"), params
            )
            return int(row.scalar_one_or_none() or 0)

    async def prune(self) -> int:
        """Drop holds that outlived their request (its replica died); return how many."""
        async with self._store.write() as conn:
            result = await conn.execute(
                text("DELETE FROM budget_holds WHERE expires_at <= :now"), {"now": self._clock()}
            )
            return int(result.rowcount or 0)


async def settle(conn: AsyncConnection, settled: Sequence[tuple[BudgetHold, int]]) -> None:
    """End each hold and spend its request's real tokens, in the caller's transaction."""
    if not settled:
        return
    await conn.execute(text("DELETE FROM budget_holds WHERE id = :id"), [{"id": h.id} for h, _ in settled])
    spent: dict[tuple[str, str], int] = {}
    for hold, tokens in settled:
        spent[(hold.key_id, hold.period)] = spent.get((hold.key_id, hold.period), 0) + tokens
    rows = [{"key_id": k, "period": p, "spent": s} for (k, p), s in sorted(spent.items())]
    await conn.execute(text(_SPEND), rows)
