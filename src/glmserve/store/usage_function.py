"""A usage batch on PostgreSQL in one round trip: a function that runs the batch's statements.

``UsageStore.write`` commits a batch as five statements: the per-request rows, the daily sums,
and the budget settlement (spend, end the requests' own holds, shrink their allowances). Through
asyncpg that is BEGIN, one round trip per statement and COMMIT, six in all, each an await on
the event loop. ``glmserve_record_usage`` takes the same five parameter lists as JSON arrays and
runs the same statements, in the same order, so it takes the same row locks in the same order
as before (the key's budget row first: see ``store/budget.py``); one ``SELECT`` of it is one
round trip and its own transaction. Measured on the 2-core VM, one row with a shared hold, 300
in a row, median: 0.71-0.78 ms and 0.36-0.41 ms of loop CPU through the statements, 0.19 ms and
0.08 ms through the function.

The function reads its rows with ``jsonb_populate_recordset`` over the tables' own row types,
so each value is cast to its column's type by PostgreSQL. It mirrors ``usage.py``'s statements:
a column added to either table needs a migration that replaces the function, and
``tests/unit/store/test_usage_function.py`` fails until it does (it writes the same rows both
ways and compares the tables). ``SET search_path FROM CURRENT`` binds it to the schema it was
made in. SQLite keeps the statements.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

CALL = "SELECT glmserve_record_usage($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb)"

_EVENT_COLUMNS = (
    "id, created_at, day, key_id, model, deployment, request_id, stream, status, error_code,"
    " prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, latency_ms, ttft_ms,"
    " cache_hit, protocol, usage_estimated, prompt, output"
)
_DAILY_SUMS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_hits",
    "latency_ms_sum",
)
_DAILY_COLUMNS = "day, key_id, model, " + ", ".join(_DAILY_SUMS)
_ADD_DAILY = ", ".join(f"{c} = usage_daily.{c} + excluded.{c}" for c in _DAILY_SUMS)

_CREATE = f"""
CREATE OR REPLACE FUNCTION glmserve_record_usage(
    events jsonb, daily jsonb, spend jsonb, ended jsonb, shrunk jsonb
) RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $body$
BEGIN
    INSERT INTO usage_events ({_EVENT_COLUMNS})
        SELECT {_EVENT_COLUMNS} FROM jsonb_populate_recordset(NULL::usage_events, events);
    INSERT INTO usage_daily ({_DAILY_COLUMNS})
        SELECT {_DAILY_COLUMNS} FROM jsonb_populate_recordset(NULL::usage_daily, daily)
        ON CONFLICT (day, key_id, model) DO UPDATE SET {_ADD_DAILY};
    INSERT INTO key_budget (key_id, period, spent)
        SELECT key_id, period, spent FROM jsonb_populate_recordset(NULL::key_budget, spend)
        ON CONFLICT (key_id, period) DO UPDATE SET spent = key_budget.spent + excluded.spent;
    DELETE FROM budget_holds WHERE id IN (SELECT e.id FROM jsonb_to_recordset(ended) AS e(id text));
    -- Summed per hold: requests of one batch may share an allowance, and an UPDATE ... FROM
    -- changes a row once however many rows it joins.
    UPDATE budget_holds SET tokens = budget_holds.tokens - s.tokens
        FROM (SELECT id, sum(tokens) AS tokens FROM jsonb_to_recordset(shrunk) AS r(id text, tokens bigint)
              GROUP BY id) AS s
        WHERE budget_holds.id = s.id;
END
$body$
"""


async def create(conn: AsyncConnection) -> None:
    """The migration step: make (or replace) the function on PostgreSQL; nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(_CREATE)
