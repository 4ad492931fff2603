"""The hot-path benchmark's contenders (``bench/hot_path.py``): each a context manager that
starts one server in front of the fake upstream and yields an ``Endpoint`` to load.

glmserve runs with only a data directory, a config of two upstream models (``bench``: the fake's
``ok``; ``bench-paced``: 10 chunks 50 ms apart), the static admin key, and its response cache
off; a stored-key contender creates its key through ``/admin/keys`` and counts its usage rows in
the database afterwards. PostgreSQL contenders get a fresh schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import litellm_proxy
import model_source
from processes import free_port, server_process

GLMSERVE = Path(sys.executable).parent / "glmserve"
STATIC_KEY = "benchbenchbenchbenchbenchbench12.BenchSecret12345"
PACED = "paced:10:50"  # the fake's SSE answer of 10 chunks, 50 ms apart
# A stored key with every per-request limit, and (but in the -nobudget rows) a monthly token budget.
STORED_KEY = {"name": "bench", "rpm": 10_000_000, "tpm": 2**31 - 1, "concurrency": 100_000}
BUDGET = {"budget_tokens": 10**15, "budget_period": "month"}


@dataclass(frozen=True)
class Endpoint:
    url: str
    headers: dict[str, str]
    models: dict[str, str]  # "ok" / "paced" -> the model name this contender knows them by
    rows: Any = None  # () -> usage rows written so far, for a contender that meters


def _glmserve_config(path: Path, upstream: str) -> Path:
    blocks = []
    for name, model in (("bench", "ok"), ("bench-paced", PACED)):
        blocks.append(
            f'[[models]]\nname = "{name}"\n[[models.deployments]]\nkind = "openai"\n'
            f'base_url = "{upstream}"\nmodel = "{model}"\nhealth_interval_s = 0\n'
        )
    path.write_text("\n".join(blocks))
    return path


async def _pg(url: str, statement: str) -> Any:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    name = f"glmserve_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg(url, f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(_pg(url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@contextmanager
def glmserve(name: str, args: argparse.Namespace, upstream: str) -> Iterator[Endpoint]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = args.data_dir / f"hot-{name}-{secrets.token_hex(3)}"
    config = _glmserve_config(args.data_dir / "hot-path.toml", upstream)
    extra = {
        "GLMSERVE_LOG_LEVEL": "warning",
        "GLMSERVE_CACHE__ENABLED": "false",
        "GLMSERVE_API_KEY": STATIC_KEY,
    }
    with database_url_for(name, args) as database_url:
        if database_url:
            extra["GLMSERVE_DATABASE_URL"] = database_url
        env = model_source.glmserve_env(data, extra)
        cmd = [str(GLMSERVE), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
        log = args.data_dir / "logs" / f"hot-{name}.log"
        with server_process(cmd, env=env, health_url=f"{base}/health", log_path=log):
            models = {"ok": "bench", "paced": "bench-paced"}
            if name == "glmserve-static":
                static = {"authorization": f"Bearer {STATIC_KEY}"}
                yield Endpoint(f"{base}/v1/chat/completions", static, models)
                return
            made = httpx.post(
                f"{base}/admin/keys",
                json=STORED_KEY | ({} if name.endswith("-nobudget") else BUDGET),
                headers={"authorization": f"Bearer {STATIC_KEY}"},
            )
            made.raise_for_status()
            key = made.json()["key"]
            key_id = key.split(".")[0]
            if database_url:
                rows = lambda: asyncio.run(_pg(args.postgres, _count_sql(key_id, database_url)))  # noqa: E731
            else:
                rows = lambda: _sqlite_rows(data / "glmserve.db", key_id)  # noqa: E731
            yield Endpoint(f"{base}/v1/chat/completions", {"authorization": f"Bearer {key}"}, models, rows)


@contextmanager
def database_url_for(name: str, args: argparse.Namespace) -> Iterator[str | None]:
    """A fresh PostgreSQL schema's URL for a PostgreSQL contender, else None (SQLite in its data dir)."""
    if "postgres" not in name:
        yield None
        return
    with pg_schema(args.postgres) as schema:
        yield f"{args.postgres}?search_path={schema}"


def _count_sql(key_id: str, database_url: str) -> str:
    schema = database_url.rsplit("search_path=", 1)[1]
    return f"SELECT count(*) FROM \"{schema}\".usage_events WHERE key_id = '{key_id}'"  # ids are hex


def _sqlite_rows(path: Path, key_id: str) -> int:
    with sqlite3.connect(path, timeout=10) as db:
        return int(db.execute("SELECT count(*) FROM usage_events WHERE key_id = ?", (key_id,)).fetchone()[0])


@contextmanager
def litellm(name: str, args: argparse.Namespace, upstream: str) -> Iterator[Endpoint]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = args.data_dir / "logs"
    cli = litellm_proxy.ensure(args.data_dir / ".venv-litellm", logs / "litellm-install.log")
    config = args.data_dir / f"{name}.yaml"
    config.write_text(litellm_proxy.config(upstream, "ok", "bench", extra={"bench-paced": PACED}))
    env = dict(os.environ) | {"LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION"}
    models = {"ok": "bench", "paced": "bench-paced"}
    with database_url_for(name, args) as database_url:
        if database_url:
            env["DATABASE_URL"] = database_url.replace("search_path=", "schema=")
        with server_process(
            litellm_proxy.command(cli, config, port), env=env, timeout_s=180,
            health_url=f"{base}/health/liveliness", log_path=logs / f"hot-{name}.log",
        ):  # fmt: skip
            headers = {"authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}
            if database_url:
                made = httpx.post(f"{base}/key/generate", json={}, headers=headers, timeout=30)
                made.raise_for_status()
                headers = {"authorization": f"Bearer {made.json()['key']}"}
            yield Endpoint(f"{base}/v1/chat/completions", headers, models)


@contextmanager
def started(name: str, args: argparse.Namespace, upstream: str) -> Iterator[Endpoint]:
    if name == "direct":
        yield Endpoint(f"{upstream}/chat/completions", {}, {"ok": "ok", "paced": PACED})
    elif name.startswith("glmserve"):
        with glmserve(name, args, upstream) as endpoint:
            yield endpoint
    else:
        with litellm(name, args, upstream) as endpoint:
            yield endpoint
