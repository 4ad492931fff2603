"""Budget holds from memory: each replica takes its keys' budget in allowances, not per request.

A budgeted request used to cost a write transaction before any engine work (lock the key's row,
read spent + held, insert a hold): the largest part of the hot path's cost (see issue 20's
profiles). ``BudgetAllowances`` keeps, per key and period, an allowance: one hold row of up to
``ALLOWANCE_REQUESTS`` requests' worst case at first (``BudgetLedger.reserve_allowance``), and
for a busy key about a second of its rate (``requests_for``, up to ``MOST_REQUESTS``), from which
it admits requests in memory, each a ``shared`` hold that settles against the row with its usage
row (in the usage writer's transaction, as before). So a key that sends a steady stream costs
one transaction per allowance instead of one per request, and none on the request's path.

What stays true: an allowance is taken only while the budget has room for many requests and is
at most a quarter of that room (``store.budget``), so the budget is never overshot through one;
near the end each request holds its own row, and the old rule (at most one request over) holds.
An allowance admits for ``USABLE_S`` seconds, then gives back what it did not use, so an idle
replica does not keep another's requests from the budget for long; its row lives ``USABLE_S``
longer than a request's hold (``lease_s``), so every request it admitted is covered as long as
one with its own hold. A replica that dies leaves its allowance held until that row expires,
like any hold. A key whose budget changes (on any replica, through the key cache) retires its
allowance at its next request; ``close`` gives back every remainder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from glmserve.store.budget import BudgetHold, BudgetLedger, Grant, Refusal, period_of
from glmserve.store.key_records import BudgetPeriod

log = logging.getLogger("glmserve.accounting.budget")
ALLOWANCE_REQUESTS = 64  # a key's first allowance covers this many requests of the one that took it
MOST_REQUESTS = 1024  # and the allowances of a busy key grow up to this many
COVER_S = 1.0  # an allowance is sized to about this long of its key's rate so far
USABLE_S = 5.0


@dataclass(slots=True)
class Allowance:
    grant: Grant
    budget: int  # the budget it was taken under: another budget retires it
    remaining: int
    until: float  # monotonic: admits no request after this
    taken_at: float  # monotonic
    admitted: int = 0

    def take(self, tokens: int, budget: int, now: float) -> BudgetHold | None:
        if budget != self.budget or now >= self.until or tokens > self.remaining:
            return None
        self.remaining -= tokens
        self.admitted += 1
        grant = self.grant
        return BudgetHold(grant.id, grant.key_id, grant.period, tokens, shared=True)


def requests_for(previous: Allowance | None, now: float) -> int:
    """How many requests the next allowance covers: ``COVER_S`` of the rate at which the key used
    the one it replaces, between ``ALLOWANCE_REQUESTS`` and ``MOST_REQUESTS``. A key at 1,400
    requests/s took 22 transactions a second with 64-request allowances, each one stalling the
    requests that waited for it; at that rate it now takes about one."""
    if previous is None:
        return ALLOWANCE_REQUESTS
    rate = previous.admitted / max(now - previous.taken_at, 1e-3)
    return max(ALLOWANCE_REQUESTS, min(MOST_REQUESTS, round(rate * COVER_S)))


class BudgetAllowances:
    def __init__(
        self, ledger: BudgetLedger, *, clock: Callable[[], float] = time.time, usable_s: float = USABLE_S
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._usable_s = usable_s
        self._allowances: dict[tuple[str, str], Allowance] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._returns: set[asyncio.Task[None]] = set()

    async def reserve(
        self, key_id: str, budget: int, kind: BudgetPeriod, tokens: int
    ) -> BudgetHold | Refusal:
        slot = (key_id, period_of(kind, self._clock()))
        current = self._allowances.get(slot)
        if current and (hold := current.take(tokens, budget, time.monotonic())):
            return hold
        lock = self._locks.setdefault(key_id, asyncio.Lock())
        async with lock:  # one transaction per key at a time; the others wait and take from it
            current = self._allowances.get(slot)
            if current and (hold := current.take(tokens, budget, time.monotonic())):
                return hold
            # One used up, out of time or under another budget gives back its rest in the same transaction.
            returned = self._detach(slot, current) if current is not None else []
            most = tokens * requests_for(current, time.monotonic())
            outcome = await self._ledger.reserve_allowance(
                key_id, budget, kind, tokens, most, self._usable_s, returned
            )
            if not isinstance(outcome, Grant):
                return outcome
            now = time.monotonic()
            allowance = Allowance(outcome, budget, outcome.tokens, now + self._usable_s, now)
            self._allowances[slot] = allowance
            asyncio.get_running_loop().call_later(self._usable_s, self._expire, slot, allowance)
            hold = allowance.take(tokens, budget, time.monotonic())
            assert hold is not None, "a grant covers the request that took it"
            return hold

    async def close(self) -> None:
        """Give back every allowance's remainder (the server is stopping)."""
        for slot, allowance in list(self._allowances.items()):
            self._retire(slot, allowance)
        if self._returns:
            await asyncio.gather(*self._returns, return_exceptions=True)

    def _expire(self, slot: tuple[str, str], allowance: Allowance) -> None:
        if self._allowances.get(slot) is allowance:
            self._retire(slot, allowance)

    def _detach(self, slot: tuple[str, str], allowance: Allowance) -> list[tuple[str, int]]:
        """Stop admitting from ``allowance``; what it has not used, to give back."""
        if self._allowances.get(slot) is allowance:
            del self._allowances[slot]
        unused, allowance.remaining = allowance.remaining, 0
        return [(allowance.grant.id, unused)] if unused > 0 else []

    def _retire(self, slot: tuple[str, str], allowance: Allowance) -> None:
        if returned := self._detach(slot, allowance):
            task = asyncio.ensure_future(self._give_back(returned))
            self._returns.add(task)
            task.add_done_callback(self._returns.discard)

    async def _give_back(self, returned: list[tuple[str, int]]) -> None:
        try:
            await self._ledger.give_back(returned)
        except (SQLAlchemyError, OSError) as exc:  # not given back: it expires with its row
            log.warning("could not give back an unused budget allowance (%s)", type(exc).__name__)
