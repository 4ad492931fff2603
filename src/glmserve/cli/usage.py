"""``glmserve usage``: usage by key, model and day, read from the database."""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from glmserve.config.settings import load_settings
from glmserve.store.db import open_store
from glmserve.store.key_records import KeyPolicy
from glmserve.store.usage import UsageQuery, UsageStore

_DAILY = (
    "day", "key_id", "model", "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
)  # fmt: skip
_EVENTS = (
    "created_at", "key_id", "model", "status", "error_code", "prompt_tokens", "completion_tokens",
    "latency_ms", "ttft_ms", "request_id",
)  # fmt: skip


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file", exists=True)]


class BudgetPeriodOpt(enum.StrEnum):
    month = "month"
    total = "total"


def describe_policy(policy: KeyPolicy) -> str:
    parts = [f"{name}={value}" for name in ("rpm", "tpm", "concurrency") if (value := getattr(policy, name))]
    if policy.budget_tokens is not None:
        parts.append(f"budget={policy.budget_tokens}/{policy.budget_period}")
    if policy.models is not None:
        parts.append("models=" + ",".join(policy.models))
    return " ".join(parts) or "-"


def _day(value: str | None) -> str | None:
    if value is not None:
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a date like 2025-01-31") from None
    return value


def usage(
    key: Annotated[str | None, typer.Option(help="only this key id")] = None,
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    since: Annotated[str | None, typer.Option(help="first UTC day, YYYY-MM-DD", callback=_day)] = None,
    until: Annotated[str | None, typer.Option(help="last UTC day, YYYY-MM-DD", callback=_day)] = None,
    requests: Annotated[bool, typer.Option("--requests", help="one line per request, not per day")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many lines")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print token usage per day, key and model (or per request with --requests)."""
    query = UsageQuery(key_id=key, model=model, since=since, until=until, limit=limit)
    rows = asyncio.run(_read(config, query, requests))
    columns = _EVENTS if requests else _DAILY
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
        return
    typer.echo("  ".join(c.upper() for c in columns))
    for row in rows:
        typer.echo("  ".join(_cell(c, row[c]) for c in columns))


async def _read(config: Path | None, query: UsageQuery, requests: bool) -> list[dict[str, Any]]:
    settings = load_settings(config)
    store = await open_store(settings.resolved_database_url)
    try:
        usage_store = UsageStore(store)
        return await (usage_store.events(query) if requests else usage_store.daily(query))
    finally:
        await store.close()


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "created_at":
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    return str(value)
