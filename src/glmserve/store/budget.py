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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from glmserve.errors import Unavailable
from glmserve.ids import hex_id
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
_PRUNE = "DELETE FROM budget_holds WHERE expires_at <= :now OR tokens <= 0"
_SHRINK = "UPDATE budget_holds SET tokens = tokens - :tokens WHERE id = :id"
ALLOWANCE_SHARE = 4  # an allowance holds at most this fraction (1/4) of the budget's room
ALLOWANCE_MIN_REQUESTS = 8  # and is taken only when it covers at least this many requests
_SPEND = (
    "INSERT INTO key_budget (key_id, period, spent) VALUES (:key_id, :period, :spent)"
    " ON CONFLICT (key_id, period) DO UPDATE SET spent = key_budget.spent + excluded.spent"
)


def period_of(kind: BudgetPeriod, now: float) -> str:
    if kind == "total":
        return "total"
    day = datetime.fromtimestamp(now, UTC)
    return f"{day.year:04d}-{day.month:02d}"


def next_period_start(now: float) -> datetime:
    """When a monthly budget resets: the first of next month, UTC."""
    day = datetime.fromtimestamp(now, UTC)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BudgetHold:
    """``tokens`` held in row ``id``: the whole row, or (``shared``) a part of an allowance's row."""

    id: str
    key_id: str
    period: str
    tokens: int
    shared: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """An allowance's row: ``tokens`` held for this replica's requests until ``expires_at``."""

    id: str
    key_id: str
    period: str
    tokens: int
    expires_at: float


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
        hold = BudgetHold(hex_id(12), key_id, period_of(kind, now), tokens)
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

    async def reserve_allowance(
        self,
        key_id: str,
        budget: int,
        kind: BudgetPeriod,
        tokens: int,
        most: int,
        extra_s: float,
        returned: Sequence[tuple[str, int]] = (),
    ) -> Grant | BudgetHold | Refusal:
        """Hold up to ``most`` tokens in one row while the budget has room for many requests of
        ``tokens`` (a ``Grant``, kept ``extra_s`` beyond the hold time); else a ``reserve``.
        ``returned`` (see ``give_back``) is given back first, in the same transaction."""
        now = self._clock()
        period = period_of(kind, now)
        params = {"key_id": key_id, "period": period, "now": now}
        try:
            async with self._store.write() as conn:
                await conn.execute(text(_LOCK_ROW), params)
                if returned:
                    await conn.execute(text(_SHRINK), [{"id": i, "tokens": t} for i, t in returned])
                used = int((await conn.execute(text(_SPENT_AND_HELD), params)).scalar_one())
                if used >= budget:
                    return Refusal(budget, used)
                size = min(most, (budget - used) // ALLOWANCE_SHARE)
                allowance = size >= ALLOWANCE_MIN_REQUESTS * tokens
                row_id = hex_id(12)
                held = size if allowance else tokens
                expires_at = now + self._hold_s + (extra_s if allowance else 0.0)
                await conn.execute(
                    text(_HOLD), {**params, "id": row_id, "tokens": held, "expires_at": expires_at}
                )
        except OperationalError as exc:
            raise Unavailable("budget ledger unavailable", retry_after=1) from exc
        if allowance:
            return Grant(row_id, key_id, period, size, expires_at)
        return BudgetHold(row_id, key_id, period, tokens)

    async def give_back(self, returned: Sequence[tuple[str, int]]) -> None:
        """Shrink each allowance row ``id`` by the ``tokens`` its replica will not use."""
        if returned:
            async with self._store.write() as conn:
                await conn.execute(text(_SHRINK), [{"id": i, "tokens": t} for i, t in returned])

    async def spent(self, key_id: str, kind: BudgetPeriod) -> int:
        params = {"key_id": key_id, "period": period_of(kind, self._clock())}
        async with self._store.engine.connect() as conn:
            row = await conn.execute(
                text("SELECT spent FROM key_budget WHERE key_id = :key_id AND period = :period"), params
            )
            return int(row.scalar_one_or_none() or 0)

    async def prune(self) -> int:
        """Drop holds that outlived their request (its replica died) and used-up allowances."""
        async with self._store.write() as conn:
            result = await conn.execute(text(_PRUNE), {"now": self._clock()})
            return int(result.rowcount or 0)


def settlement(settled: Sequence[tuple[BudgetHold, int]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The statements that end each hold and spend its request's real tokens (for ``Store.run``,
    in the usage rows' transaction)."""
    own = [{"id": h.id} for h, _ in settled if not h.shared]
    shared = [{"id": h.id, "tokens": h.tokens} for h, _ in settled if h.shared]
    spent: dict[tuple[str, str], int] = {}
    for hold, tokens in settled:
        spent[(hold.key_id, hold.period)] = spent.get((hold.key_id, hold.period), 0) + tokens
    rows = [{"key_id": k, "period": p, "spent": s} for (k, p), s in sorted(spent.items())]
    # The key's budget row first, as ``reserve_allowance`` takes it before an allowance's row:
    # one lock order, so a settlement and a reservation never deadlock on PostgreSQL.
    return [(_SPEND, rows), ("DELETE FROM budget_holds WHERE id = :id", own), (_SHRINK, shared)]
