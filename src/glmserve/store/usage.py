"""Usage records: one ``usage_events`` row per request and ``usage_daily`` aggregates.

``write`` commits a batch of rows, their daily aggregates and the settlement of their budget
holds in one transaction, so a request is either fully accounted for or not at all. On
PostgreSQL the same statements run inside one function call (``usage_function``, which mirrors
the columns here: a new column needs a migration that replaces it).
Days are UTC dates (``YYYY-MM-DD``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text

from glmserve.store import usage_function
from glmserve.store.budget import BudgetHold, settlement
from glmserve.store.db import Store

EVENT_COLUMNS = (
    "id, created_at, day, key_id, model, deployment, request_id, stream, status, error_code,"
    " prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, latency_ms, ttft_ms, cache_hit,"
    " protocol, usage_estimated"
)
_CONTENT_COLUMNS = ", prompt, output"
_INSERT_EVENT = (
    f"INSERT INTO usage_events ({EVENT_COLUMNS}{_CONTENT_COLUMNS}) VALUES ("
    + ", ".join(f":{c.strip()}" for c in (EVENT_COLUMNS + _CONTENT_COLUMNS).split(","))
    + ")"
)
_COUNTERS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_hits",
    "latency_ms_sum",
)
_UPSERT_DAILY = (
    f"INSERT INTO usage_daily (day, key_id, model, {', '.join(_COUNTERS)}) VALUES (:day, :key_id, :model, "
    + ", ".join(f":{c}" for c in _COUNTERS)
    + ") ON CONFLICT (day, key_id, model) DO UPDATE SET "
    + ", ".join(f"{c} = usage_daily.{c} + excluded.{c}" for c in _COUNTERS)
)
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()  # YYYY-MM-DD; strftime is 4x slower


@dataclass(slots=True)
class UsageRow:
    id: str
    created_at: float
    key_id: str
    model: str
    deployment: str | None
    request_id: str
    stream: bool
    status: int
    error_code: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cache_hit: bool = False  # answered from the response cache
    charged: bool = True  # its tokens count against the key's budget (a cache hit may not)
    protocol: str = "chat"  # the front-end that served it: chat, messages, responses, …
    usage_estimated: bool = False  # the tokens were counted from the text, not reported by the engine
    prompt: str | None = field(default=None, repr=False)
    output: str | None = field(default=None, repr=False)
    hold: BudgetHold | None = field(default=None, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def params(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _STORED}
        for flag in ("stream", "cache_hit", "usage_estimated"):
            values[flag] = int(values[flag])
        values["day"] = day_of(self.created_at)
        return values

    @property
    def charged_tokens(self) -> int:
        return self.total_tokens if self.charged else 0


_STORED = tuple(f.name for f in fields(UsageRow) if f.name not in ("hold", "charged"))


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Filters for reading usage; ``since``/``until`` are UTC days, inclusive.

    ``status`` (per-request rows only) is a half-open range of HTTP statuses, ``(429, 430)`` for
    one code or ``(400, 600)`` for every error; ``offset`` skips that many rows (paging).
    """

    key_id: str | None = None
    model: str | None = None
    since: str | None = None
    until: str | None = None
    request_id: str | None = None
    limit: int = DEFAULT_LIMIT
    status: tuple[int, int] | None = None
    offset: int = 0

    def where(self, *, daily: bool) -> tuple[str, dict[str, Any]]:
        filters = {"key_id": self.key_id, "model": self.model, "since": self.since, "until": self.until}
        if not daily:
            filters["request_id"] = self.request_id
        clauses = {
            "key_id": "key_id = :key_id",
            "model": "model = :model",
            "since": "day >= :since",
            "until": "day <= :until",
            "request_id": "request_id = :request_id",
        }
        given = {k: v for k, v in filters.items() if v is not None}
        parts = [clauses[k] for k in given]
        if not daily and self.status is not None:
            parts.append("status >= :status_lo AND status < :status_hi")
            given |= {"status_lo": self.status[0], "status_hi": self.status[1]}
        where = " AND ".join(parts)
        return (f" WHERE {where}" if where else ""), given


class UsageStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def write(self, rows: Sequence[UsageRow]) -> None:
        """Commit ``rows``, their daily aggregates and their budget settlements together."""
        if not rows:
            return
        batch = statements(rows)
        if self._store.calls:  # PostgreSQL: the same statements, in one round trip
            await self._store.call(usage_function.CALL, *(orjson.dumps(p).decode() for _, p in batch))
        else:
            await self._store.run(batch)

    async def events(self, query: UsageQuery) -> list[dict[str, Any]]:
        """Per-request rows, newest first; the stored content only if it was kept."""
        rows, _ = await self.events_page(query)
        return rows

    async def events_page(self, query: UsageQuery) -> tuple[list[dict[str, Any]], bool]:
        """One page of ``events`` and whether more rows follow it."""
        where, params = query.where(daily=False)
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM usage_events{where}"
            " ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset"
        )
        limit = _limit(query.limit)
        paging = {"limit": limit + 1, "offset": max(0, query.offset)}
        async with self._store.engine.connect() as conn:
            result = await conn.execute(text(sql), {**params, **paging})
            rows = [_event(dict(row)) for row in result.mappings()]
        return rows[:limit], len(rows) > limit

    async def daily(self, query: UsageQuery) -> list[dict[str, Any]]:
        """Daily aggregates per key and model, newest day first."""
        where, params = query.where(daily=True)
        columns = ", ".join(c for c in _COUNTERS if c != "latency_ms_sum")
        sql = (
            f"SELECT day, key_id, model, {columns}, latency_ms_sum FROM usage_daily{where}"
            " ORDER BY day DESC, key_id, model LIMIT :limit"
        )
        async with self._store.engine.connect() as conn:
            result = await conn.execute(text(sql), {**params, "limit": _limit(query.limit)})
            return [_aggregate(dict(row)) for row in result.mappings()]

    async def prune(self, older_than_days: int, *, now: float | None = None) -> int:
        """Delete per-request rows older than ``older_than_days``; the daily aggregates stay."""
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        async with self._store.write() as conn:
            result = await conn.execute(
                text("DELETE FROM usage_events WHERE created_at < :cutoff"), {"cutoff": cutoff}
            )
            return int(result.rowcount or 0)


def statements(rows: Sequence[UsageRow]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``rows``' transaction: their events, their daily sums, their holds' settlement."""
    settled = [(r.hold, r.charged_tokens) for r in rows if r.hold is not None]
    return [(_INSERT_EVENT, [r.params() for r in rows]), (_UPSERT_DAILY, _daily(rows)), *settlement(settled)]


def _limit(value: int) -> int:
    return max(1, min(MAX_LIMIT, value))


def _daily(rows: Sequence[UsageRow]) -> list[dict[str, Any]]:
    sums: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        group = (day_of(row.created_at), row.key_id, row.model)
        agg = sums.setdefault(group, dict.fromkeys(_COUNTERS, 0))
        agg["requests"] += 1
        agg["errors"] += int(row.status >= 400)
        agg["prompt_tokens"] += row.prompt_tokens
        agg["completion_tokens"] += row.completion_tokens
        agg["reasoning_tokens"] += row.reasoning_tokens
        agg["cached_tokens"] += row.cached_tokens
        agg["cache_hits"] += int(row.cache_hit)
        agg["latency_ms_sum"] += row.latency_ms
    # Sorted, so concurrent writers lock PostgreSQL rows in one order and never deadlock.
    return [{"day": d, "key_id": k, "model": m, **agg} for (d, k, m), agg in sorted(sums.items())]


def _event(row: dict[str, Any]) -> dict[str, Any]:
    row["stream"] = bool(row["stream"])
    row["cache_hit"] = bool(row["cache_hit"])
    row["usage_estimated"] = bool(row["usage_estimated"])
    row["total_tokens"] = int(row["prompt_tokens"]) + int(row["completion_tokens"])
    return row


def _aggregate(row: dict[str, Any]) -> dict[str, Any]:
    requests = int(row["requests"])
    latency = float(row.pop("latency_ms_sum"))
    counts = {c: int(row[c]) for c in _COUNTERS if c != "latency_ms_sum"}
    total = counts["prompt_tokens"] + counts["completion_tokens"]
    mean = round(latency / requests, 1) if requests else 0.0
    return {**row, **counts, "total_tokens": total, "mean_latency_ms": mean}
